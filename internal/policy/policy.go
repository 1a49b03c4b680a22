// Package policy evaluates the administrator's hard boundaries: blocked
// commands, denied paths and hosts, argument sizes. It is pure: no I/O, no
// clock, no state; the interceptor resolves paths and hosts before asking.
//
// Nothing overrides a policy denial: not a token, an allowance, a workspace
// mode or a human answer.
package policy
