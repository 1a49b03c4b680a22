// Package budget enforces spending limits atomically.
//
// Money is counted in integer micro-dollars (Micros) so that no sum ever
// drifts. Before an action runs, its estimated cost is reserved against
// every limit that applies (per action, per session, per workspace); a
// reservation that would cross any limit is refused, so concurrent
// reservations can never overspend together. After the action, Commit
// charges the real cost and releases the rest. Sub-agents charge their
// parent's session account, so a child can never spend beyond its parent.
//
// A Tracker is in memory and safe for concurrent use; the runtime persists
// each session's spending with the session and restores it with SetSpent.
// The limits are passed with each reservation, because a workspace's
// configuration may tighten them for the sessions in it.
package budget

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Micros is an amount of US dollars times 1,000,000.
type Micros int64

// FromUSD converts dollars, rounding to the nearest micro-dollar. NaN,
// negative and absurd values become -1, which every check refuses.
func FromUSD(usd float64) Micros {
	if math.IsNaN(usd) || usd < 0 || usd > 1e12 {
		return -1
	}
	return Micros(math.Round(usd * 1e6))
}

// USD converts back to dollars for display.
func (m Micros) USD() float64 { return float64(m) / 1e6 }

func (m Micros) String() string { return fmt.Sprintf("$%.4f", m.USD()) }

// Limits are the configured ceilings; zero means "no limit" for
// SessionMax, PerActionMax and WorkspaceMax.
type Limits struct {
	SessionMax    Micros
	PerActionMax  Micros
	WorkspaceMax  Micros
	WarnAtPercent int // 1..100; 0 disables warnings
}

// ErrExceeded is wrapped by every refusal.
var ErrExceeded = errors.New("budget exceeded")

// ExceededError says which limit a reservation would cross.
type ExceededError struct {
	Limit     string // "per_action", "session", "workspace"
	Requested Micros
	Spent     Micros // committed plus reserved before this request
	Max       Micros
}

func (e *ExceededError) Error() string {
	return fmt.Sprintf("%s budget: %v requested, %v already spent or reserved, limit %v", e.Limit, e.Requested, e.Spent, e.Max)
}

func (e *ExceededError) Unwrap() error { return ErrExceeded }

// Warning reports that an account crossed WarnAtPercent of its limit.
type Warning struct {
	Account string // "session" or "workspace"
	Key     string // the session id or workspace root
	Used    Micros
	Max     Micros
}

type account struct {
	spent    Micros // committed
	reserved Micros // held by open reservations
	warned   bool
}

func (a *account) used() Micros { return a.spent + a.reserved }

// Validate refuses negative or out-of-range limits.
func (l Limits) Validate() error {
	if l.SessionMax < 0 || l.PerActionMax < 0 || l.WorkspaceMax < 0 || l.WarnAtPercent < 0 || l.WarnAtPercent > 100 {
		return fmt.Errorf("invalid budget limits %+v", l)
	}
	return nil
}

// Tracker holds every account.
type Tracker struct {
	mu         sync.Mutex
	sessions   map[string]*account // guarded by mu
	workspaces map[string]*account // guarded by mu
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{sessions: map[string]*account{}, workspaces: map[string]*account{}}
}

// Reservation is money held for one action. Exactly one of Commit or
// Release should be called; later calls do nothing.
type Reservation struct {
	t         *Tracker
	limits    Limits
	session   string
	workspace string
	amount    Micros
	done      bool // guarded by t.mu
}

// Amount returns the reserved amount.
func (r *Reservation) Amount() Micros { return r.amount }

func (t *Tracker) accountsLocked(session, workspace string) (*account, *account) {
	s := t.sessions[session]
	if s == nil {
		s = &account{}
		t.sessions[session] = s
	}
	var w *account
	if workspace != "" {
		w = t.workspaces[workspace]
		if w == nil {
			w = &account{}
			t.workspaces[workspace] = w
		}
	}
	return s, w
}

// Reserve holds estimate against the session (and workspace, if not empty)
// accounts under limits l. It fails with an *ExceededError when any limit
// would be crossed; nothing is held then. Warnings crossed by this
// reservation are returned.
func (t *Tracker) Reserve(l Limits, session, workspace string, estimate Micros) (*Reservation, []Warning, error) {
	if err := l.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrExceeded, err)
	}
	if estimate < 0 {
		return nil, nil, fmt.Errorf("%w: invalid cost estimate %d", ErrExceeded, estimate)
	}
	if session == "" {
		return nil, nil, errors.New("budget: reservation without a session")
	}
	if l.PerActionMax > 0 && estimate > l.PerActionMax {
		return nil, nil, &ExceededError{Limit: "per_action", Requested: estimate, Max: l.PerActionMax}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, w := t.accountsLocked(session, workspace)
	if l.SessionMax > 0 && s.used()+estimate > l.SessionMax {
		return nil, nil, &ExceededError{Limit: "session", Requested: estimate, Spent: s.used(), Max: l.SessionMax}
	}
	if w != nil && l.WorkspaceMax > 0 && w.used()+estimate > l.WorkspaceMax {
		return nil, nil, &ExceededError{Limit: "workspace", Requested: estimate, Spent: w.used(), Max: l.WorkspaceMax}
	}
	s.reserved += estimate
	if w != nil {
		w.reserved += estimate
	}
	var warns []Warning
	warns = warnLocked(warns, l, "session", session, s, l.SessionMax)
	if w != nil {
		warns = warnLocked(warns, l, "workspace", workspace, w, l.WorkspaceMax)
	}
	return &Reservation{t: t, limits: l, session: session, workspace: workspace, amount: estimate}, warns, nil
}

func warnLocked(warns []Warning, l Limits, kind, key string, a *account, max Micros) []Warning {
	if a.warned || max <= 0 || l.WarnAtPercent == 0 {
		return warns
	}
	if a.used()*100 >= max*Micros(l.WarnAtPercent) {
		a.warned = true
		warns = append(warns, Warning{Account: kind, Key: key, Used: a.used(), Max: max})
	}
	return warns
}

// Commit charges actual and returns the rest of the reservation. An actual
// cost above the reservation is charged in full (the money is spent), so
// the account may exceed its limit by that difference; every later
// reservation is then refused.
func (r *Reservation) Commit(actual Micros) []Warning {
	if actual < 0 {
		actual = r.amount
	}
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.done {
		return nil
	}
	r.done = true
	s, w := t.accountsLocked(r.session, r.workspace)
	s.reserved -= r.amount
	s.spent += actual
	var warns []Warning
	warns = warnLocked(warns, r.limits, "session", r.session, s, r.limits.SessionMax)
	if w != nil {
		w.reserved -= r.amount
		w.spent += actual
		warns = warnLocked(warns, r.limits, "workspace", r.workspace, w, r.limits.WorkspaceMax)
	}
	return warns
}

// Release returns the whole reservation unspent.
func (r *Reservation) Release() {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	s, w := t.accountsLocked(r.session, r.workspace)
	s.reserved -= r.amount
	if w != nil {
		w.reserved -= r.amount
	}
}

// Usage is a snapshot of one account.
type Usage struct {
	Spent    Micros
	Reserved Micros
}

// Session returns the usage of a session account.
func (t *Tracker) Session(id string) Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	var u Usage
	if a := t.sessions[id]; a != nil {
		u.Spent, u.Reserved = a.spent, a.reserved
	}
	return u
}

// Workspace returns the usage of a workspace account.
func (t *Tracker) Workspace(root string) Usage {
	t.mu.Lock()
	defer t.mu.Unlock()
	var u Usage
	if a := t.workspaces[root]; a != nil {
		u.Spent, u.Reserved = a.spent, a.reserved
	}
	return u
}

// SetSpent restores the committed spending of a session and its workspace
// (when resuming a saved session). It only ever raises what is recorded,
// so a stale snapshot cannot erase spending.
func (t *Tracker) SetSpent(session string, spent Micros, workspace string, workspaceSpent Micros) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, w := t.accountsLocked(session, workspace)
	s.spent = max(s.spent, spent)
	if w != nil {
		w.spent = max(w.spent, workspaceSpent)
	}
}
