package capsule

import (
	"context"
	"fmt"
	"time"

	"github.com/adhocore/gronx"

	"github.com/astrid-runtime/astrid/internal/capsulepkg"
	"github.com/astrid-runtime/astrid/internal/security"
	"github.com/astrid-runtime/astrid/sdk"
)

// maxDynamicJobs bounds the jobs one capsule schedules at run time.
const maxDynamicJobs = 32

// cronJob is a scheduled job. Jobs of [[cron]] are added at load; others
// by cron_schedule.
type cronJob struct {
	capsule, name, schedule, action string
	dynamic                         bool
	// next is when it runs next; zero until the first Tick sees it.
	next time.Time
}

// addJobLocked adds or replaces a job; m.mu is held.
func (m *Manager) addJobLocked(id, name, schedule, action string, dynamic bool) {
	m.jobs[id+"/"+name] = &cronJob{capsule: id, name: name, schedule: schedule, action: action, dynamic: dynamic}
}

// CronSession is the session cron runs of capsule id act in: no
// workspace (relative paths resolve nowhere), safe mode, nobody to ask
// (an action that needs approval is deferred).
func CronSession(id string) security.Session {
	return security.Session{ID: "capsule:" + id + ":cron", Principal: "capsule:" + id, Frontend: "cron", Mode: security.Safe}
}

// Tick runs the jobs due at now: a job's first tick computes its next
// run after now; later ticks run it once when its time has come, then
// compute the next. The scheduler started by Start calls Tick every
// second; tests call it with their own clock.
func (m *Manager) Tick(ctx context.Context, now time.Time) {
	type due struct{ id, name string }
	var run []due
	m.mu.Lock()
	for _, j := range m.jobs {
		if j.next.IsZero() {
			j.next = nextRun(j.schedule, now)
			continue
		}
		if !now.Before(j.next) {
			run = append(run, due{j.capsule, j.name})
			j.next = nextRun(j.schedule, now)
		}
	}
	m.mu.Unlock()
	for _, d := range run {
		if err := m.RunCron(ctx, d.id, d.name); err != nil {
			m.log.Warn("cron run failed", "capsule", d.id, "job", d.name, "err", err)
		}
	}
}

func nextRun(schedule string, after time.Time) time.Time {
	t, err := gronx.NextTickAfter(schedule, after, false)
	if err != nil {
		return after.Add(100 * 365 * 24 * time.Hour) // never: the schedule was validated
	}
	return t
}

// RunCron runs one job of a loaded capsule now, as the capsule action
// capsule://<id>/cron.<name> in CronSession(id): the run is judged and
// audited (decision and outcome) like any action.
func (m *Manager) RunCron(ctx context.Context, id, name string) error {
	m.mu.Lock()
	c, ok := m.loaded[id]
	j, jok := m.jobs[id+"/"+name]
	m.mu.Unlock()
	if !ok || !jok {
		return fmt.Errorf("capsule %s has no cron job %q", id, name)
	}
	a, err := capsuleAction(id, CronSession(id), "cron."+name, map[string]string{"job": name, "action": j.action}, "cron job "+name)
	if err != nil {
		return err
	}
	_, err = m.ic.Run(ctx, a, security.ExecutorFunc(func(ctx context.Context, a security.Action) ([]byte, error) {
		return c.call(ctx, a.Session, sdk.KindCron, name, []byte(j.action))
	}))
	if m.o.OnCron != nil {
		m.o.OnCron(id, name, err)
	}
	return err
}

func (m *Manager) cronSchedule(ctx context.Context, cs *callState, a, b []byte) ([]byte, error) {
	name, schedule := string(a), string(b)
	if !capsulepkg.ValidToolName(name) || !gronx.IsValid(schedule) {
		return nil, hostErrf(sdk.StatusInvalid, "cron: want a job name of a-z, 0-9 and '_' and a valid schedule")
	}
	args := map[string]string{"op": "schedule", "job": name, "schedule": schedule}
	return cs.gated(ctx, "cron", cs.c.caps.Cron, args, "schedule cron job "+name, func(context.Context) ([]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		n := 0
		for _, j := range m.jobs {
			if j.capsule == cs.c.id && j.dynamic {
				n++
			}
		}
		if old, ok := m.jobs[cs.c.id+"/"+name]; ok && !old.dynamic {
			return nil, hostErrf(sdk.StatusInvalid, "cron: %s is declared in Capsule.toml", name)
		} else if !ok && n >= maxDynamicJobs {
			return nil, hostErrf(sdk.StatusLimit, "cron: more than %d scheduled jobs", maxDynamicJobs)
		}
		m.addJobLocked(cs.c.id, name, schedule, "", true)
		return nil, nil
	})
}

func (m *Manager) cronCancel(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	name := string(a)
	return cs.gated(ctx, "cron", cs.c.caps.Cron, map[string]string{"op": "cancel", "job": name}, "cancel cron job "+name, func(context.Context) ([]byte, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		j, ok := m.jobs[cs.c.id+"/"+name]
		if !ok || !j.dynamic {
			return nil, hostErrf(sdk.StatusNotFound, "cron: no scheduled job %q", clipString(name, 64))
		}
		delete(m.jobs, cs.c.id+"/"+name)
		return nil, nil
	})
}
