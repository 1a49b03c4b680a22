//go:build wasip1

// Command notes is an example Astrid capsule: tools that keep notes as
// Markdown files under the workspace's notes/ directory, with an index in
// the capsule's key-value store, and a cron job that counts them.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o notes.wasm .
//
// or `astrid capsule compile examples/notes`, which also writes the
// module's hash into Capsule.toml.
package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/astrid-runtime/astrid/sdk"
)

func init() {
	sdk.HandleTool("note_add", add)
	sdk.HandleTool("note_list", list)
	sdk.HandleTool("note_read", read)
	sdk.RegisterCron("tally", tally)
}

type addArgs struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

func add(a addArgs) (string, error) {
	slug := slugify(a.Title)
	if slug == "" {
		return "", errors.New("the title needs at least one letter or digit")
	}
	if err := sdk.Mkdir("notes"); err != nil {
		return "", err
	}
	path := "notes/" + slug + ".md"
	if err := sdk.WriteFile(path, []byte("# "+a.Title+"\n\n"+a.Text+"\n")); err != nil {
		return "", err
	}
	if err := sdk.KVSet("note:"+slug, []byte(a.Title)); err != nil {
		return "", err
	}
	return "saved " + path, nil
}

type listArgs struct{}

func list(listArgs) (string, error) {
	keys, err := sdk.KVList("note:")
	if err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "no notes", nil
	}
	var b strings.Builder
	for _, k := range keys {
		title, err := sdk.KVGet(k)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s: %s\n", strings.TrimPrefix(k, "note:"), title)
	}
	return b.String(), nil
}

type readArgs struct {
	Slug string `json:"slug"`
}

func read(a readArgs) (string, error) {
	if a.Slug != slugify(a.Slug) || a.Slug == "" {
		return "", fmt.Errorf("%q is not a note name", a.Slug)
	}
	b, err := sdk.ReadFile("notes/" + a.Slug + ".md")
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// tally counts the notes and records the count and the run number.
func tally(string) error {
	keys, err := sdk.KVList("note:")
	if err != nil {
		return err
	}
	runs := 0
	if b, err := sdk.KVGet("stats:runs"); err == nil {
		runs, _ = strconv.Atoi(string(b))
	} else if !sdk.IsNotFound(err) {
		return err
	}
	if err := sdk.KVSet("stats:count", []byte(strconv.Itoa(len(keys)))); err != nil {
		return err
	}
	sdk.Log(fmt.Sprintf("tally: %d notes", len(keys)))
	return sdk.KVSet("stats:runs", []byte(strconv.Itoa(runs+1)))
}

func slugify(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '_':
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

func main() {}
