package devicemgr

import (
	"fmt"
	"log/slog"

	"github.com/vflink/vflink/api"
	"github.com/vflink/vflink/internal/fabric/junos"
	"github.com/vflink/vflink/internal/fabric/ovs"
	"github.com/vflink/vflink/internal/fabric/render"
)

// Dial is the production Dialer: junos devices over NETCONF (rendered by render.Junos), ovs
// devices through ovs-vsctl (management address = the OVSDB's TCP host:port, bridge = the
// device's name).
func Dial(dev api.Device, cred api.DeviceCredentials, learn func(string)) (Driver, Renderer, error) {
	return DialWithLog(nil)(dev, cred, learn)
}

// DialWithLog is Dial with the drivers logging to log.
func DialWithLog(log *slog.Logger) Dialer {
	return func(dev api.Device, cred api.DeviceCredentials, learn func(string)) (Driver, Renderer, error) {
		switch dev.Driver {
		case "junos":
			d := junos.New(junos.Config{Name: dev.Name, Address: dev.ManagementAddress, Username: cred.Username,
				Password: cred.Password, HostKey: cred.HostKey, OnHostKey: learn, Log: log})
			return d, func(dev api.Device, atts []api.Attachment) ([]string, error) {
				return render.Junos(render.Input{Device: dev, Attachments: atts})
			}, nil
		case "ovs":
			d := ovs.New(ovs.Config{Name: dev.Name, DB: "tcp:" + dev.ManagementAddress, Bridge: dev.Name, Log: log})
			return d, func(dev api.Device, atts []api.Attachment) ([]string, error) {
				return ovs.Render(atts, dev.Name)
			}, nil
		}
		return nil, nil, fmt.Errorf("device %s: driver %q is not known; allowed: junos, ovs", dev.Name, dev.Driver)
	}
}
