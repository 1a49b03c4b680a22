package tui

import (
	"context"
	"errors"
	"io"

	tea "charm.land/bubbletea/v2"
)

// Run runs the terminal chat UI on in and out, which must be a terminal,
// until the user quits or ctx ends. It does not end the session: the caller
// decides that.
func Run(ctx context.Context, opts Options, in io.Reader, out io.Writer) error {
	if opts.Client == nil || opts.Events == nil {
		return errors.New("tui: Options.Client and Options.Events are required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the model's wait for events
	p := tea.NewProgram(New(ctx, opts), tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}
