package demo_test

// scenarios are the demo scenarios CI runs. (trunk needs the agent to give a trunk's parent port a
// VLAN 0 VF and multihoming needs it to spread a server's ports over PFs; both are being added.)
var scenarios = []string{"access"}
