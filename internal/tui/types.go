package tui

import "github.com/astrid-runtime/astrid/internal/lineui"

// Client is the part of the daemon API the chat front ends call; see
// lineui.Client.
type Client = lineui.Client

// Options configure Run; see lineui.Options.
type Options = lineui.Options
