package policy

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Limits on shell analysis. A command line beyond them is not analysed and
// is treated as dynamic: it is never auto-approved.
const (
	// MaxShellSource is the longest command line that is parsed.
	MaxShellSource = 64 << 10
	// MaxShellDepth bounds nested `sh -c '…'` strings.
	MaxShellDepth = 4
	// maxShellCommands bounds the simple commands collected from one line.
	maxShellCommands = 1024
)

// ShellCommand is one simple command found in a command line.
type ShellCommand struct {
	// Name is the command's name after quote removal, with any directory
	// stripped (/usr/bin/sudo → sudo). Empty when it cannot be known.
	Name string
	// Args are the arguments after quote removal; an element that cannot
	// be known statically is reported through Dynamic instead.
	Args []string
	// Via lists the wrappers the command was found behind, outermost
	// first: "env", "xargs", "sh -c", "find -exec", ...
	Via []string
}

// ShellAnalysis is what AnalyzeShell found in a command line.
type ShellAnalysis struct {
	// Commands are the simple commands whose names are known, in source
	// order, including those behind wrappers and inside nested strings.
	Commands []ShellCommand
	// Dynamic lists why the line cannot be fully known statically (empty
	// when it can). A dynamic line is never auto-approved by a mode or an
	// allowance: only a human answer or a token that grants dynamic
	// execution can allow it.
	Dynamic []string
}

// IsDynamic reports whether anything in the line cannot be known statically.
func (a *ShellAnalysis) IsDynamic() bool { return len(a.Dynamic) > 0 }

// Names returns the distinct command names, in first-seen order.
func (a *ShellAnalysis) Names() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range a.Commands {
		if !seen[c.Name] {
			seen[c.Name] = true
			out = append(out, c.Name)
		}
	}
	return out
}

// AnalyzeShell parses a bash command line and collects every command it can
// run: in pipelines, lists, subshells, $(…), backticks, process
// substitution, if/for/while/case, functions, behind wrappers such as env,
// command, exec, nice, timeout, xargs, find -exec, and inside sh -c / bash -c
// strings (recursively, up to MaxShellDepth). Quotes and backslashes are
// removed as the shell would, so s"u"do, \sudo and 'sudo' are all sudo.
//
// It does no I/O and never fails: input it cannot understand is reported in
// Dynamic.
func AnalyzeShell(src string) *ShellAnalysis {
	a := &ShellAnalysis{}
	w := &shellWalker{a: a}
	w.source(src, 0, nil)
	return a
}

type shellWalker struct {
	a *ShellAnalysis
}

func (w *shellWalker) dynamic(format string, args ...any) {
	r := fmt.Sprintf(format, args...)
	for _, d := range w.a.Dynamic {
		if d == r {
			return
		}
	}
	w.a.Dynamic = append(w.a.Dynamic, r)
}

// source parses and walks one piece of shell source.
func (w *shellWalker) source(src string, depth int, via []string) {
	if len(src) > MaxShellSource {
		w.dynamic("command line longer than %d bytes", MaxShellSource)
		return
	}
	if depth > MaxShellDepth {
		w.dynamic("shell strings nested deeper than %d", MaxShellDepth)
		return
	}
	if strings.ContainsRune(src, 0) {
		w.dynamic("NUL byte in command line")
		return
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		w.dynamic("unparseable shell: %v", err)
		return
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CallExpr:
			w.assigns(n.Assigns)
			if len(n.Args) > 0 {
				w.call(n.Args, depth, via)
			}
		case *syntax.DeclClause:
			w.assigns(n.Args)
		case *syntax.ParamExp:
			// $x as a command name is caught in call; inside arguments
			// an expansion cannot run anything by itself.
		}
		return true
	})
}

// dangerousVars may change which program a later name resolves to or run
// code on their own.
var dangerousVars = map[string]bool{
	"PATH": true, "LD_PRELOAD": true, "LD_LIBRARY_PATH": true, "LD_AUDIT": true,
	"BASH_ENV": true, "ENV": true, "IFS": true, "PROMPT_COMMAND": true,
	"SHELLOPTS": true, "BASHOPTS": true, "PS4": true, "GLOBIGNORE": true,
}

func (w *shellWalker) assigns(as []*syntax.Assign) {
	for _, as := range as {
		if as.Name != nil && dangerousVars[as.Name.Value] {
			w.dynamic("assignment to %s", as.Name.Value)
		}
	}
}

// call analyses one simple command given as words.
func (w *shellWalker) call(words []*syntax.Word, depth int, via []string) {
	if len(w.a.Commands) >= maxShellCommands {
		w.dynamic("more than %d commands", maxShellCommands)
		return
	}
	vals := make([]string, len(words))
	static := make([]bool, len(words))
	for i, wd := range words {
		vals[i], static[i] = wordValue(wd)
	}
	// The first word is the name; it must be fully static and free of
	// expansions (globs, braces) to be known.
	if !static[0] || hasExpansion(words[0]) {
		w.dynamic("command name is computed at run time: %s", printWord(words[0]))
		return
	}
	w.command(vals, static, depth, via)
}

// command handles a static command name with its arguments, unwrapping
// wrappers that run another command.
func (w *shellWalker) command(vals []string, static []bool, depth int, via []string) {
	if len(vals) == 0 {
		return
	}
	if vals[0] == "" {
		return // `"" args` runs nothing
	}
	name := path.Base(vals[0])
	w.a.Commands = append(w.a.Commands, ShellCommand{Name: name, Args: append([]string(nil), vals[1:]...), Via: via})
	sub := func(i int, label string) {
		// The command starting at vals[i] runs behind a wrapper.
		if i < len(vals) {
			if !static[i] {
				w.dynamic("%s runs a command computed at run time", label)
				return
			}
			w.command(vals[i:], static[i:], depth, appendVia(via, label))
		}
	}
	switch name {
	case "eval":
		w.dynamic("eval runs a string as code")
	case "source", ".":
		w.dynamic("%s runs the contents of a file", name)
	case "alias", "enable", "trap", "hash", "shopt", "fc", "bind", "complete", "compgen":
		w.dynamic("%s can change what later names run", name)
	case "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "rbash", "csh", "tcsh":
		w.shell(name, vals, static, depth, via)
	case "busybox", "toybox":
		sub(1, name)
	case "env":
		w.env(vals, static, depth, via)
	case "command":
		i := 1
		for ; i < len(vals) && strings.HasPrefix(vals[i], "-"); i++ {
			if strings.ContainsAny(vals[i], "vV") {
				return // command -v only looks a name up
			}
			if vals[i] == "--" {
				i++
				break
			}
		}
		sub(i, name)
	case "timeout":
		i := skipOptions(vals, static, 1, map[string]bool{"-s": true, "--signal": true, "-k": true, "--kill-after": true})
		sub(i+1, name) // the duration comes first
	case "xargs":
		i := skipOptions(vals, static, 1, map[string]bool{
			"-a": true, "--arg-file": true, "-d": true, "--delimiter": true, "-E": true, "-e": true,
			"-I": true, "-i": true, "-L": true, "-l": true, "-n": true, "--max-args": true,
			"-P": true, "--max-procs": true, "-s": true, "--max-chars": true, "--process-slot-var": true,
		})
		sub(i, name)
	case "find":
		for i := 1; i < len(vals); i++ {
			switch vals[i] {
			case "-exec", "-execdir", "-ok", "-okdir":
				sub(i+1, "find "+vals[i])
			case "-fprintf", "-fprint", "-fprint0", "-fls":
				// write files; not our concern here
			}
		}
	case "python", "python2", "python3", "perl", "ruby", "node", "nodejs", "deno", "bun", "php",
		"lua", "luajit", "tclsh", "wish", "Rscript", "julia", "osascript", "pwsh", "powershell":
		for i := 1; i < len(vals); i++ {
			switch vals[i] {
			case "-c", "-e", "-E", "--eval", "-r", "-p", "--print", "-x", "-Command", "-command":
				w.dynamic("%s runs inline code", name)
				return
			}
			if strings.HasPrefix(vals[i], "-") && !strings.HasPrefix(vals[i], "--") && strings.ContainsAny(vals[i][1:], "ce") && len(vals[i]) <= 4 {
				w.dynamic("%s runs inline code", name)
				return
			}
		}
	case "awk", "gawk", "mawk", "nawk":
		for i := 1; i < len(vals); i++ {
			if !static[i] || strings.Contains(vals[i], "system") || strings.Contains(vals[i], "|") || strings.Contains(vals[i], "getline") {
				w.dynamic("%s program may run commands", name)
				return
			}
		}
	case "sed", "gsed":
		for i := 1; i < len(vals); i++ {
			// GNU sed's e command and s///e flag run the pattern space.
			if !static[i] || sedExecutes(vals[i]) {
				w.dynamic("sed script may run commands")
				return
			}
		}
	case "git":
		for i := 1; i < len(vals); i++ {
			if vals[i] == "-c" || strings.HasPrefix(vals[i], "--config-env") || vals[i] == "--exec-path" {
				w.dynamic("git configuration on the command line may run commands")
				return
			}
		}
	default:
		if spec, ok := wrappers[name]; ok {
			w.wrapper(name, spec, vals, static, depth, via)
			return
		}
		w.scanArgs(name, vals, static)
	}
}

// sedCommandE matches GNU sed's e command (after an optional address) and
// the e flag of s///, both of which run text as a shell command.
var sedCommandE = regexp.MustCompile(`(^|[;{}\n])\s*(([0-9]+|\$|/[^/]*/)(,([0-9]+|\$|/[^/]*/))?)?\s*!?\s*e(\s|;|$)|s(.).*e[gpiImM0-9]*($|[;}\s])`)

// sedExecutes reports whether a sed argument might run commands. It errs
// on the side of "yes"; a false alarm only means a human is asked.
func sedExecutes(s string) bool {
	if strings.HasPrefix(s, "-") && !strings.HasPrefix(s, "-e") {
		return false
	}
	return sedCommandE.MatchString(strings.TrimPrefix(s, "-e"))
}

// wrapperSpec describes how a wrapper finds the command it runs: options
// that take a separate value, and how many positional words (a duration, a
// root directory, a lock file, a host) come before the command.
type wrapperSpec struct {
	optArg      string // space-separated options followed by a value
	positionals int
	// joins reports that the wrapper joins the rest of its words into a
	// shell string (watch, ssh).
	joins bool
}

var wrappers = map[string]wrapperSpec{
	"builtin": {}, "nohup": {}, "setsid": {}, "time": {}, "unbuffer": {}, "chronic": {},
	"fakeroot": {}, "catchsegv": {}, "caffeinate": {}, "torsocks": {}, "proxychains": {}, "proxychains4": {},
	"sudo":          {optArg: "-u -g -h -p -C -D -R -T -U --user --group --host --prompt --chdir --chroot"},
	"doas":          {optArg: "-u -C"},
	"pkexec":        {optArg: "--user"},
	"run0":          {optArg: "-u -g -D --user --group --chdir --unit --property --description --slice --nice --setenv"},
	"su":            {optArg: "-s -g -G -w --shell --group --supp-group"},
	"runuser":       {optArg: "-u -s -g -G -w --user --shell --group --supp-group"},
	"exec":          {optArg: "-a"},
	"nice":          {optArg: "-n --adjustment"},
	"ionice":        {optArg: "-c -n -p -P -u --class --classdata --pid --pgid --uid"},
	"stdbuf":        {optArg: "-i -o -e --input --output --error"},
	"strace":        {optArg: "-e -o -p -s -u -a -b -E -O -P -S -X -I --output --attach --user --env"},
	"ltrace":        {optArg: "-e -o -p -s -u -a -n -x -X -F -l --output --library"},
	"valgrind":      {},
	"proot":         {optArg: "-r -b -m -w -k -q --rootfs --bind --mount --cwd --kernel-release --qemu"},
	"firejail":      {},
	"nsenter":       {optArg: "-t -S -G --target --setuid --setgid -w -r --wd --root"},
	"unshare":       {optArg: "--map-user --map-group --setuid --setgid --propagation -R -w --root --wd"},
	"chroot":        {optArg: "--userspec --groups", positionals: 1},
	"taskset":       {optArg: "", positionals: 1},
	"chrt":          {optArg: "-T -P -D --sched-runtime --sched-period --sched-deadline", positionals: 1},
	"numactl":       {optArg: "-i -N -m -C -p --interleave --cpunodebind --membind --physcpubind --preferred"},
	"systemd-run":   {optArg: "-p -E -u -M -H -t --property --setenv --unit --machine --host --description --slice --uid --gid --nice --working-directory"},
	"flatpak-spawn": {optArg: "--env --directory"},
	"sg":            {positionals: 1},
	"script":        {optArg: "-E -I -O -B -T -t -m --echo --log-in --log-out --log-io --log-timing --logging-format", positionals: 0},
	"flock":         {optArg: "-E -w --conflict-exit-code --timeout", positionals: 1},
	"watch":         {optArg: "-n -d -q --interval --differences --equexit", joins: true},
	"parallel":      {optArg: "-j -S --jobs --sshlogin --halt --delay --timeout", joins: true},
	"ssh":           {optArg: "-b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w -B", positionals: 1, joins: true},
}

// wrapper unwraps a command that runs another one given by its arguments.
// A "-c STRING" anywhere among its options is parsed as shell source (su -c,
// script -c, flock -c); then the first word after the options and the
// wrapper's positional words starts the inner command.
func (w *shellWalker) wrapper(name string, spec wrapperSpec, vals []string, static []bool, depth int, via []string) {
	takesArg := map[string]bool{}
	for _, o := range strings.Fields(spec.optArg) {
		takesArg[o] = true
	}
	positionals := spec.positionals
	for i := 1; i < len(vals); i++ {
		if !static[i] {
			w.dynamic("%s runs a command computed at run time", name)
			return
		}
		v := vals[i]
		switch {
		case (v == "-c" || v == "--command") && name != "ssh":
			if i+1 >= len(vals) || !static[i+1] {
				w.dynamic("%s -c runs a string computed at run time", name)
				return
			}
			w.source(vals[i+1], depth+1, appendVia(via, name+" -c"))
			i++
		case v == "--":
			positionals = 0
			if i+1 < len(vals) {
				w.inner(name, spec, vals[i+1:], static[i+1:], depth, via)
			}
			return
		case strings.HasPrefix(v, "-") && len(v) > 1:
			if takesArg[v] {
				i++
			}
		case positionals > 0:
			positionals--
		default:
			w.inner(name, spec, vals[i:], static[i:], depth, via)
			return
		}
	}
}

func (w *shellWalker) inner(name string, spec wrapperSpec, vals []string, static []bool, depth int, via []string) {
	if spec.joins {
		w.source(strings.Join(vals, " "), depth+1, appendVia(via, name))
		return
	}
	w.command(vals, static, depth, appendVia(via, name))
}

// shell handles sh/bash/...: with -c the string is parsed recursively;
// otherwise the shell runs a file or stdin, which cannot be known.
func (w *shellWalker) shell(name string, vals []string, static []bool, depth int, via []string) {
	for i := 1; i < len(vals); i++ {
		if !static[i] {
			w.dynamic("%s with arguments computed at run time", name)
			return
		}
		v := vals[i]
		if v == "--" {
			break
		}
		if strings.HasPrefix(v, "-") && !strings.HasPrefix(v, "--") && strings.Contains(v, "c") {
			if i+1 >= len(vals) {
				w.dynamic("%s -c without a command string", name)
				return
			}
			if !static[i+1] {
				w.dynamic("%s -c runs a string computed at run time", name)
				return
			}
			w.source(vals[i+1], depth+1, appendVia(via, name+" -c"))
			return
		}
		if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
			if v == "-o" || v == "+o" || v == "-O" || v == "+O" || v == "--rcfile" || v == "--init-file" {
				i++
			}
			continue
		}
		w.dynamic("%s runs the script file %s", name, v)
		return
	}
	w.dynamic("%s reads commands from its input", name)
}

// env skips options and NAME=value pairs, then analyses the command.
func (w *shellWalker) env(vals []string, static []bool, depth int, via []string) {
	for i := 1; i < len(vals); i++ {
		if !static[i] {
			w.dynamic("env runs a command computed at run time")
			return
		}
		v := vals[i]
		switch {
		case v == "-S" || v == "--split-string" || strings.HasPrefix(v, "-S") || strings.HasPrefix(v, "--split-string="):
			s := strings.TrimPrefix(strings.TrimPrefix(v, "--split-string="), "-S")
			if v == "-S" || v == "--split-string" {
				if i+1 >= len(vals) || !static[i+1] {
					w.dynamic("env -S runs a string computed at run time")
					return
				}
				s = strings.Join(vals[i+1:], " ")
			}
			w.source(s, depth+1, appendVia(via, "env -S"))
			return
		case v == "-u" || v == "--unset" || v == "-C" || v == "--chdir":
			i++
		case v == "--":
			if i+1 < len(vals) {
				w.command(vals[i+1:], static[i+1:], depth, appendVia(via, "env"))
			}
			return
		case strings.HasPrefix(v, "-"):
		case strings.Contains(v, "="):
			if n, _, _ := strings.Cut(v, "="); dangerousVars[n] {
				w.dynamic("env sets %s", n)
			}
		default:
			w.command(vals[i:], static[i:], depth, appendVia(via, "env"))
			return
		}
	}
}

// scanArgs looks at the arguments of an ordinary command. Any argument that
// names a shell or a privilege tool on its own (for example `chpst sudo`)
// might be run by a wrapper we do not know; that makes the line dynamic.
func (w *shellWalker) scanArgs(name string, vals []string, static []bool) {
	for i := 1; i < len(vals); i++ {
		if !static[i] {
			continue
		}
		if runsSomething[path.Base(vals[i])] {
			w.dynamic("%s is given %q as an argument", name, vals[i])
			return
		}
	}
}

// runsSomething are names that, passed as an argument, suggest the command
// runs them.
var runsSomething = map[string]bool{
	"sudo": true, "su": true, "doas": true, "pkexec": true, "run0": true,
	"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "eval": true,
}

// skipOptions returns the index of the first non-option word at or after i;
// takesArg lists options followed by a separate value.
func skipOptions(vals []string, static []bool, i int, takesArg map[string]bool) int {
	for ; i < len(vals); i++ {
		if !static[i] {
			return i
		}
		v := vals[i]
		if v == "--" {
			return i + 1
		}
		if !strings.HasPrefix(v, "-") || v == "-" {
			return i
		}
		if takesArg[v] {
			i++
		}
	}
	return i
}

func appendVia(via []string, s string) []string {
	out := make([]string, len(via), len(via)+1)
	copy(out, via)
	return append(out, s)
}

// wordValue returns the word after quote removal, and whether it is fully
// static (no parameter, command or arithmetic expansion).
func wordValue(w *syntax.Word) (string, bool) {
	var b strings.Builder
	static := true
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(unescapeUnquoted(p.Value))
		case *syntax.SglQuoted:
			if p.Dollar {
				s, ok := ansiC(p.Value)
				if !ok {
					static = false
				}
				b.WriteString(s)
			} else {
				b.WriteString(p.Value)
			}
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if l, ok := q.(*syntax.Lit); ok {
					b.WriteString(unescapeDouble(l.Value))
				} else {
					static = false
				}
			}
		default:
			static = false
		}
	}
	return b.String(), static
}

// hasExpansion reports whether an unquoted part of the word could expand
// into something else: globs, braces, extended globs.
func hasExpansion(w *syntax.Word) bool {
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			if strings.ContainsAny(stripEscaped(p.Value), "*?[{") {
				return true
			}
		case *syntax.ExtGlob, *syntax.BraceExp:
			return true
		}
	}
	return false
}

// stripEscaped removes backslash-escaped characters, leaving the ones the
// shell would still interpret.
func stripEscaped(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unescapeUnquoted applies backslash removal outside quotes.
func unescapeUnquoted(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			if s[i] == '\n' {
				continue
			}
			b.WriteByte(s[i])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unescapeDouble applies backslash removal inside double quotes, where a
// backslash escapes only $ ` " \ and newline.
func unescapeDouble(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '$', '`', '"', '\\':
				b.WriteByte(s[i+1])
				i++
				continue
			case '\n':
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// ansiC decodes the common escapes of $'…' strings; ok is false when it
// meets one it does not model, so the caller treats the word as dynamic.
func ansiC(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'e', 'E':
			b.WriteByte(27)
		case 'f':
			b.WriteByte(12)
		case 'v':
			b.WriteByte(11)
		case '\\', '\'', '"', '?':
			b.WriteByte(s[i])
		default:
			return b.String(), false // \x, \u, octal, \c: not modelled
		}
	}
	return b.String(), true
}

func printWord(w *syntax.Word) string {
	var b strings.Builder
	if err := syntax.NewPrinter().Print(&b, w); err != nil {
		return "?"
	}
	return b.String()
}

// BlockedIn returns the first command of the analysis whose name matches
// one of the blocked patterns (exact names or path.Match globs such as
// "mkfs.*"), and the pattern it matched.
func (a *ShellAnalysis) BlockedIn(blocked []string) (ShellCommand, string, bool) {
	for _, c := range a.Commands {
		for _, pat := range blocked {
			if c.Name == pat {
				return c, pat, true
			}
			if ok, err := path.Match(pat, c.Name); err == nil && ok {
				return c, pat, true
			}
		}
	}
	return ShellCommand{}, "", false
}
