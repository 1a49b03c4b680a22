package config

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWorkspaceTemplate(t *testing.T) {
	tpl, err := WorkspaceTemplate()
	if err != nil {
		t.Fatal(err)
	}
	text := string(tpl)
	if !strings.Contains(text, "can only TIGHTEN") {
		t.Error("template does not say the workspace can only tighten")
	}
	// As written (everything commented), it is a valid workspace layer
	// that changes nothing.
	res := layers{workspace: s(text)}.mustRun(t)
	if diff := cmp.Diff(defaultConfig(t), res.Config); diff != "" {
		t.Errorf("template changes the config:\n%s", diff)
	}

	// Every workspace-settable key is present, commented out.
	keyLine := regexp.MustCompile(`(?m)^# ([a-z_]+) = (.*)  # .*$`)
	table := regexp.MustCompile(`(?m)^\[([a-z_.]+)\]$`)
	var present []string
	uncommented := text
	cur := ""
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "[servers.example]") {
			break // the example server is checked below
		}
		if m := table.FindStringSubmatch(line); m != nil {
			cur = m[1]
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			present = append(present, cur+"."+m[1])
			uncommented = strings.Replace(uncommented, line, m[1]+" = "+m[2], 1)
		}
	}
	var want []string
	for _, pat := range sortedKeys(fields) {
		if r := fields[pat].ws; r != wsDeny && r != wsServer {
			want = append(want, pat)
		}
	}
	if diff := cmp.Diff(want, sortedStrings(present)); diff != "" {
		t.Errorf("template keys (-want +got):\n%s", diff)
	}

	// Uncommenting every key gives a valid workspace layer that changes
	// nothing either: the values shown are the defaults.
	res = layers{workspace: s(uncommented)}.mustRun(t)
	if diff := cmp.Diff(defaultConfig(t), res.Config); diff != "" {
		t.Errorf("uncommented template changes the config:\n%s\n%s", diff, uncommented)
	}

	// So does uncommenting the example server, which is forced untrusted.
	server := strings.NewReplacer("# [servers.example]", "[servers.example]", "# transport", "transport", "# command", "command", "# args", "args").Replace(uncommented)
	res = layers{workspace: s(server)}.mustRun(t)
	if srv, ok := res.Config.Servers["example"]; !ok || srv.Trusted || srv.AutoStart {
		t.Errorf("example server %+v", srv)
	}
}

func sortedStrings(in []string) []string {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	return sortedKeys(m)
}
