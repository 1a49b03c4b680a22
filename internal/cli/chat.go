package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newChatCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "chat",
		Short: "Start an interactive chat session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// NOTE: the agent runtime and daemon are separate issues; until
			// they land, chat says so plainly instead of pretending.
			return errors.New("chat is not available yet: this build has no agent runtime or model provider configured (see README, 'Status')")
		},
	}
}
