package nova

import (
	"net/http"

	"github.com/vflink/vflink/internal/auth"
)

// Compute quotas (os-quota-sets), read-only: this compute subset enforces no compute quotas, so
// every limit is -1 (unlimited), which is what `openstack quota show` then prints next to the
// network quotas the Neutron face enforces. Setting one is refused.
var quotaNames = []string{"instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups",
	"server_group_members", "injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}

func quotaSet(project string) map[string]any {
	q := map[string]any{"id": project}
	for _, n := range quotaNames {
		q[n] = -1
	}
	return q
}

func (s *Service) showQuotaSet(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	p := r.PathValue("project")
	if !c.IsAdmin() && p != c.ProjectID {
		return errf(http.StatusForbidden, "Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.")
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota_set": quotaSet(p)})
	return nil
}

func (s *Service) updateQuotaSet(w http.ResponseWriter, r *http.Request, c *auth.Context) error {
	return errf(http.StatusBadRequest, "Compute quotas are not enforced by vflink's compute subset (every limit is -1, unlimited), so they cannot be set; network quotas are set through the network API (openstack quota set --ports/--networks/--subnets).")
}
