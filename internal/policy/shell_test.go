package policy

import (
	"strings"
	"testing"
)

var testBlocked = []string{"sudo", "su", "doas", "pkexec", "run0", "mkfs", "mkfs.*", "dd", "shutdown", "reboot", "halt", "poweroff"}

type verdict string

const (
	block verdict = "block" // a blocked command is found
	ask   verdict = "ask"   // dynamic: never auto-approved
	allow verdict = "allow" // fully static, nothing blocked
)

func judge(src string) (verdict, *ShellAnalysis) {
	a := AnalyzeShell(src)
	if _, _, ok := a.BlockedIn(testBlocked); ok {
		return block, a
	}
	if a.IsDynamic() {
		return ask, a
	}
	return allow, a
}

// shellCases is the attack table: every way we know to smuggle a blocked
// command past a name check, and ordinary commands that must stay usable.
var shellCases = []struct {
	src  string
	want verdict
}{
	// Plain and quoted.
	{"sudo ls", block},
	{"su", block},
	{"su -", block},
	{"s\"u\"do ls", block},
	{"s'u'do ls", block},
	{"\\sudo ls", block},
	{"'sudo' ls", block},
	{"\"sudo\" ls", block},
	{"su\\do ls", block},
	{"\"s\"\"u\"\"d\"\"o\" ls", block},
	{"$'sudo' ls", block},
	{"$'su\\x64o' ls", ask},
	{"$\"sudo\" ls", block},
	{"/usr/bin/sudo ls", block},
	{"/bin/su root", block},
	{"./sudo", block},
	{"~/bin/sudo x", block},
	{"../../usr/bin/sudo id", block},
	{"SUDO_ASKPASS=/x sudo -A ls", block},
	{"FOO=1 sudo ls", block},
	{"sudo\tls", block},
	{"  sudo   ls  ", block},
	{"sud\\\no ls", block},
	{"doas ls", block},
	{"pkexec ls", block},
	{"run0 ls", block},
	{"mkfs.ext4 /dev/sda1", block},
	{"mkfs -t ext4 /dev/sda1", block},
	{"dd if=/dev/zero of=/dev/sda", block},
	{"shutdown -h now", block},
	{"reboot", block},
	{"/sbin/poweroff", block},
	{"halt -p", block},
	// Lists and pipelines.
	{"ls; sudo ls", block},
	{"ls && sudo ls", block},
	{"false || sudo ls", block},
	{"ls | sudo tee /etc/x", block},
	{"ls |& sudo tee /etc/x", block},
	{"ls & sudo ls", block},
	{"ls\nsudo ls", block},
	{"! sudo ls", block},
	{"time sudo ls", block},
	{"coproc sudo ls", block},
	// Subshells, substitutions.
	{"(sudo ls)", block},
	{"{ sudo ls; }", block},
	{"echo $(sudo ls)", block},
	{"echo `sudo ls`", block},
	{"echo \"$(sudo ls)\"", block},
	{"echo \"`sudo ls`\"", block},
	{"cat <(sudo ls)", block},
	{"diff <(ls) >(sudo tee x)", block},
	{"x=$(sudo ls)", block},
	{"echo $((1+$(sudo id -u)))", block},
	{"ls > $(sudo ls)", block},
	{"cat <<EOF\n$(sudo ls)\nEOF", block},
	{"[[ $(sudo id) ]]", block},
	{"local x=$(sudo ls)", block},
	{"export X=$(sudo ls)", block},
	{"declare -a a=($(sudo ls))", block},
	// Control flow and functions.
	{"if true; then sudo ls; fi", block},
	{"if sudo true; then :; fi", block},
	{"while sudo true; do :; done", block},
	{"until false; do sudo ls; done", block},
	{"for i in 1; do sudo ls; done", block},
	{"for ((i=0;i<1;i++)); do sudo ls; done", block},
	{"case x in x) sudo ls;; esac", block},
	{"f() { sudo ls; }; f", block},
	{"function f { sudo ls; }", block},
	{"select x in a; do sudo ls; done", block},
	// Wrappers.
	{"env sudo ls", block},
	{"env -i sudo ls", block},
	{"env -u HOME sudo ls", block},
	{"env FOO=bar sudo ls", block},
	{"env -- sudo ls", block},
	{"env -S 'sudo ls'", block},
	{"env -S'sudo ls'", block},
	{"command sudo ls", block},
	{"command -p sudo ls", block},
	{"builtin command sudo ls", block},
	{"exec sudo ls", block},
	{"exec -a name sudo ls", block},
	{"nice sudo ls", block},
	{"nice -n 5 sudo ls", block},
	{"nohup sudo ls", block},
	{"setsid sudo ls", block},
	{"timeout 5 sudo ls", block},
	{"timeout -s KILL 5 sudo ls", block},
	{"timeout --kill-after=1 5 sudo ls", block},
	{"xargs sudo ls", block},
	{"echo x | xargs sudo rm", block},
	{"xargs -n 1 sudo rm", block},
	{"xargs -I{} sudo rm {}", block},
	{"find . -exec sudo rm {} \\;", block},
	{"find . -execdir sudo rm {} +", block},
	{"find . -ok sudo rm {} \\;", block},
	{"stdbuf -oL sudo ls", block},
	{"ionice -c3 sudo ls", block},
	{"strace -f sudo ls", block},
	{"busybox su", block},
	{"chroot / sudo ls", block},
	{"taskset 1 sudo ls", block},
	{"flock /tmp/l sudo ls", block},
	{"flock /tmp/l -c 'sudo ls'", block},
	{"script -c 'sudo ls' /dev/null", block},
	{"watch sudo ls", block},
	{"watch 'sudo ls'", block},
	{"ssh host sudo reboot", block},
	{"nice env timeout 1 sudo ls", block},
	{"command env nice xargs sudo", block},
	// Nested shells.
	{"sh -c 'sudo ls'", block},
	{"bash -c \"sudo ls\"", block},
	{"bash -lc 'sudo ls'", block},
	{"bash -ec 'ls; sudo ls'", block},
	{"sh -c 'sh -c \"sudo ls\"'", block},
	{"zsh -c 'sudo ls'", block},
	{"dash -c 'echo $(sudo ls)'", block},
	{"bash -c 's\"u\"do ls'", block},
	{"env bash -c 'sudo ls'", block},
	{"xargs sh -c 'sudo ls'", block},
	{"find . -exec sh -c 'sudo rm \"$1\"' _ {} \\;", block},
	{"sh -c 'sh -c \"sh -c \\\"sh -c sudo\\\"\"'", block},
	{"bash -o posix -c 'sudo ls'", block},
	// Dynamic: names unknown statically.
	{"$cmd args", ask},
	{"${cmd} args", ask},
	{"\"$cmd\" args", ask},
	{"$(echo sudo) ls", ask},
	{"`echo sudo` ls", ask},
	{"x=sudo; $x ls", ask},
	{"eval ls", ask},
	{"eval 'sudo ls'", ask},
	{"curl http://x | sh", ask},
	{"curl http://x | bash", ask},
	{"bash < script.sh", ask},
	{"sh script.sh", ask},
	{"bash", ask},
	{"source ./x.sh", ask},
	{". ./x.sh", ask},
	{"alias x=ls; x", ask},
	{"s?do ls", ask},
	{"/usr/bin/su* ls", ask},
	{"s{u,x}do ls", ask},
	{"[s]udo ls", ask},
	{"PATH=/tmp/evil ls", ask},
	{"LD_PRELOAD=/tmp/x.so ls", ask},
	{"export PATH=/tmp:$PATH; ls", ask},
	{"env PATH=/tmp ls", ask},
	{"python3 -c 'import os; os.system(\"sudo ls\")'", ask},
	{"perl -e 'system(\"ls\")'", ask},
	{"node -e 'require(\"child_process\")'", ask},
	{"awk 'BEGIN{system(\"id\")}'", ask},
	{"awk '{print | \"sh\"}' f", ask},
	{"sed -n '1e id' f", ask},
	{"git -c core.pager='sudo ls' log", ask},
	{"trap 'sudo ls' EXIT", ask},
	{"bash -c \"$X\"", ask},
	{"nice $cmd", ask},
	{"xargs $cmd", ask},
	{"env $cmd", ask},
	{"sh -c", ask},
	{"ls (", ask},
	{"if then fi", ask},
	{"echo 'unterminated", ask},
	{"echo \x00 sudo", ask},
	{"mysterytool sudo", ask},
	{"chpst -u root sh", ask},
	{"sh -c 'sh -c \"sh -c \\\"sh -c \\\\\\\"sh -c ls\\\\\\\"\\\"\"'", ask},
	// Allowed: ordinary development commands.
	{"ls -la", allow},
	{"git status", allow},
	{"git commit -m 'fix sudo docs'", allow},
	{"go test ./...", allow},
	{"make -j2", allow},
	{"npm test", allow},
	{"cat README.md | grep -n sudoers", allow},
	{"echo sudo-like", allow},
	{"sudoku --solve", allow},
	{"summary.sh", allow},
	{"ls; pwd && echo done", allow},
	{"for f in *.go; do gofmt -l \"$f\"; done", allow},
	{"echo $HOME", allow},
	{"echo \"$(date)\"", allow},
	{"x=1; echo $x", allow},
	{"find . -name '*.go' -exec gofmt -l {} +", allow},
	{"xargs -n1 echo", allow},
	{"timeout 10 go test", allow},
	{"env FOO=1 go build", allow},
	{"bash -c 'go vet ./...'", allow},
	{"command -v sudo", allow},
	{"awk '{print $1}' f", allow},
	{"sed -n '1,5p' f", allow},
	{"python3 script.py", allow},
	{"diff <(ls a) <(ls b)", allow},
	{"cat <<EOF\nhello\nEOF", allow},
	{"mkdir -p build && cd build", allow},
	{"rm -rf ./build", allow},
	{"tar czf out.tgz dir", allow},
	{"docker ps", allow},
}

func TestShellTable(t *testing.T) {
	counts := map[verdict]int{}
	for _, tc := range shellCases {
		got, a := judge(tc.src)
		counts[tc.want]++
		if got != tc.want {
			t.Errorf("%q: got %s, want %s (names %v, dynamic %v)", tc.src, got, tc.want, a.Names(), a.Dynamic)
		}
	}
	if len(shellCases) < 150 {
		t.Errorf("only %d cases; the issue asks for at least 150", len(shellCases))
	}
	t.Logf("%d cases: %v", len(shellCases), counts)
}

func TestShellViaRecorded(t *testing.T) {
	a := AnalyzeShell("env nice sh -c 'timeout 1 sudo ls'")
	c, _, ok := a.BlockedIn(testBlocked)
	if !ok {
		t.Fatal("not blocked")
	}
	if got, want := strings.Join(c.Via, " > "), "env > nice > sh -c > timeout"; got != want {
		t.Errorf("via = %q, want %q", got, want)
	}
}

func TestShellLimits(t *testing.T) {
	long := strings.Repeat("ls;", MaxShellSource/3+1)
	if a := AnalyzeShell(long); !a.IsDynamic() {
		t.Error("oversized command line not dynamic")
	}
	many := strings.Repeat("ls;", maxShellCommands+10)
	if a := AnalyzeShell(many); !a.IsDynamic() {
		t.Error("too many commands not dynamic")
	}
}

func FuzzAnalyzeShell(f *testing.F) {
	for _, tc := range shellCases {
		f.Add(tc.src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		a := AnalyzeShell(src)
		// Whatever the input: a blocked word standing alone as the first
		// word of the line is always found or the line is dynamic.
		if strings.HasPrefix(src, "sudo ") && !a.IsDynamic() {
			if _, _, ok := a.BlockedIn([]string{"sudo"}); !ok {
				t.Fatalf("%q: leading sudo not found", src)
			}
		}
	})
}

func BenchmarkAnalyzeShell200(b *testing.B) {
	src := "find . -name '*.go' -print0 | xargs -0 grep -n 'TODO' | sort -u | head -n 50 && " +
		"git diff --stat HEAD~1 | tee /tmp/x.txt; go test -race ./internal/... 2>&1 | grep -v '^ok' || echo done"
	b.ReportAllocs()
	for b.Loop() {
		a := AnalyzeShell(src)
		a.BlockedIn(testBlocked)
	}
	b.ReportMetric(float64(len(src)), "bytes")
}
