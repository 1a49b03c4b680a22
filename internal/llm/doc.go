// Package llm is the runtime's one door to language models: a small
// Provider interface, the request and event types it speaks, typed errors,
// retries, and pricing.
//
// This package imports no provider SDK, so that code which only needs the
// types (the CLI, the API types, the budget) never links one. The providers
// live in sub-packages: llm/anthropic (Anthropic Messages API, alias
// "claude"), llm/openai (any OpenAI-compatible chat completions server, and
// Z.AI's GLM endpoint as the "zai" flavour) and llm/replay (a recorded
// transcript, for offline demos and reproducible tests). Package
// llm/providers picks one from the [model] configuration.
//
// # Streaming
//
// Provider.Stream returns an iterator, iter.Seq2[Event, error]. Ranging over
// it sends the request and yields events as the server streams them; nothing
// is buffered beyond one server-sent event. The iterator runs in the
// caller's goroutine and starts none of its own, so there is nothing to leak:
// breaking out of the loop, or cancelling ctx, closes the HTTP response at
// once.
//
//	for ev, err := range p.Stream(ctx, req) {
//		if err != nil {
//			return err // an *Error; the stream is over
//		}
//		switch ev.Kind {
//		case llm.EventText:
//			fmt.Print(ev.Text)
//		case llm.EventToolCallEnd:
//			calls = append(calls, ev.ToolCall) // complete, valid JSON arguments
//		}
//	}
//
// The contract every provider keeps:
//
//   - A successful stream ends with exactly one EventUsage followed by
//     exactly one EventStop, and nothing after it.
//   - A failed stream ends with one (Event{}, err) pair, err an *Error; no
//     EventStop is yielded. Events before it were real and stay valid, but
//     the turn is incomplete.
//   - Every tool call is EventToolCallStart, zero or more EventToolCallDelta
//     (argument fragments, for display only), then EventToolCallEnd, whose
//     ToolCall.Arguments is the complete argument object, checked to be
//     valid JSON. A call cut short is never ended: the stream fails instead.
//   - The iterator may be ranged over once.
//
// # Retries
//
// Requests that fail with 429, 5xx, 529 (overloaded), a connection error,
// an overload reported inside the stream, or a stream that is cut or goes
// silent for Config.StallTimeout are retried with exponential backoff and
// jitter, honouring the server's retry-after header, up to the [retry]
// configuration (see RetryPolicy). No retry happens once the first event
// has reached the caller: a retried request would repeat text the caller
// already showed.
//
// # Money
//
// Every stream reports token usage and its cost in budget.Micros, priced from
// the configured [model.pricing] table with built-in defaults for current
// Claude, GPT and GLM models (see LookupPricing). EstimateCost prices a
// request before it is sent, for the budget reservation.
package llm
