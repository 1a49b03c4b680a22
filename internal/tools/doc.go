// Package tools holds the built-in tools the model calls (read_file,
// write_file, edit_file, glob, grep, list_directory) and the Registry that
// offers them and runs their calls through the security interceptor.
//
// # A tool call, step by step
//
// The runtime builds one Registry per workspace profile, giving it a path
// filter made from that workspace's policy:
//
//	reg := tools.New(tools.Options{
//		PathFilter: func(p string) bool { return rules.Path(p, false) == nil },
//	})
//
// It sends reg.Specs() to the model. When the model calls a tool, the
// runtime passes the call on:
//
//	res, err := reg.Run(ctx, interceptor, session, "read_file", rawJSONArgs)
//
// and Run goes through these steps:
//
//  1. Run finds the tool and checks the size of the arguments.
//  2. The tool's Prepare decodes them strictly (exact field names, no
//     unknown or repeated fields, declared types; an *ArgError names the
//     field) and builds a security.Action: read_file is a FileRead of the
//     canonical path, write_file and edit_file a FileWrite, glob, grep and
//     list_directory a FileList of the resolved root (grep of a single file
//     is a FileRead). The path is resolved as the kernel would walk it
//     (security.NewFileAction); Args are the raw JSON.
//  3. The interceptor judges the action (policy, authority, budget,
//     approval, audit) and only then calls the tool's executor, with the
//     action it judged. The executor acts on Action.Path, never on the
//     model's string.
//  4. Run returns a Result: the text for the model and whether it is an
//     error. A denial names the step and rule; a deferral the approval
//     request. The text is untrusted data; the runtime wraps it with
//     security.UntrustedData.
//
// Run's error is reserved for calls that could not be attempted (no
// interceptor, context done); everything the model can act on is a Result.
//
// # File system safety
//
// Executors open the judged path with openat2(RESOLVE_NO_SYMLINKS), so a
// directory swapped for a symlink after the decision makes the call fail
// instead of reaching outside; parent directories and temporary files are
// created relative to directory descriptors opened that way. Writes are
// atomic (temporary file and rename in the same directory). Walks (glob,
// grep) never follow symlinks and ask the path filter before entering,
// listing or reading anything, so they never touch what policy refuses to
// read, such as $ASTRID_HOME or denied_paths, even below an allowed root.
//
// # Adding tools
//
// A Tool is a Spec and a Prepare method; Register adds it. bash, task and
// spark plug in that way, building their own actions (security.Execute,
// security.SubAgent, ...).
package tools
