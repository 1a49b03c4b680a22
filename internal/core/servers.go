package core

import (
	"strings"

	"github.com/astrid-runtime/astrid/internal/config"
)

// WorkspaceServers returns the MCP servers a workspace root's
// .astrid/config.toml adds (none for ""). The configuration layer has
// already refused a workspace that redefines a server of the system or
// user configuration, or that marks its own trusted or auto_start; the
// caller treats what is returned as untrusted.
func (c *Core) WorkspaceServers(workspace string) (map[string]config.Server, error) {
	if workspace == "" {
		return nil, nil
	}
	res, err := c.load(workspace)
	if err != nil {
		return nil, err
	}
	out := map[string]config.Server{}
	for key, layer := range res.Origins {
		rest, ok := strings.CutPrefix(key, "servers.")
		if !ok || layer != config.LayerWorkspace {
			continue
		}
		name, _, _ := strings.Cut(rest, ".")
		if s, ok := res.Config.Servers[name]; ok {
			out[name] = s
		}
	}
	return out, nil
}
