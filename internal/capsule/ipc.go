package capsule

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/astrid-runtime/astrid/sdk"
)

// Bounds of the ipc host functions.
const (
	// MaxIPCPayload bounds one message.
	MaxIPCPayload = 64 << 10
	// MaxIPCQueue bounds the messages queued for one subscription; a
	// publish to a full queue is refused.
	MaxIPCQueue = 256
	// MaxPublishesPerCall bounds ipc_publish within one call into a
	// capsule; the publish past it is refused, audited, and ends the call.
	MaxPublishesPerCall = 64
)

// bus is the in-memory ipc bus. Topics on the bus are "<capsule>/<topic>";
// a capsule publishes only under its own id and subscribes to topics it
// declared (its own, or another capsule's written "<id>/<topic>"). It is
// safe for concurrent use.
type bus struct {
	mu   sync.Mutex
	subs map[string]map[string][]sdk.Message // guarded by mu; bus topic -> subscriber id -> queue
}

func newBus() *bus { return &bus{subs: map[string]map[string][]sdk.Message{}} }

// busTopic maps a topic as a capsule names it to the bus topic.
func busTopic(id, topic string) string {
	if strings.Contains(topic, "/") {
		return topic
	}
	return id + "/" + topic
}

func (b *bus) subscribe(topic, sub string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[topic] == nil {
		b.subs[topic] = map[string][]sdk.Message{}
	}
	if _, ok := b.subs[topic][sub]; !ok {
		b.subs[topic][sub] = nil
	}
}

// publish queues msg for every subscriber of topic; it fails, queueing
// nothing, when a subscriber's queue is full.
func (b *bus) publish(topic string, msg sdk.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for sub, q := range b.subs[topic] {
		if len(q) >= MaxIPCQueue {
			return fmt.Errorf("the queue of subscriber %s is full (%d messages)", sub, MaxIPCQueue)
		}
	}
	for sub, q := range b.subs[topic] {
		b.subs[topic][sub] = append(q, msg)
	}
	return nil
}

func (b *bus) poll(topic, sub string) ([]sdk.Message, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, ok := b.subs[topic][sub]
	if ok {
		b.subs[topic][sub] = nil
	}
	return q, ok
}

// drop removes every subscription of sub (at unload).
func (b *bus) drop(sub string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for t, subs := range b.subs {
		delete(subs, sub)
		if len(subs) == 0 {
			delete(b.subs, t)
		}
	}
}

func (m *Manager) ipcPublish(ctx context.Context, cs *callState, a, b []byte) ([]byte, error) {
	topic := string(a)
	declared := slices.Contains(cs.c.caps.IPC, topic) && !strings.Contains(topic, "/")
	args := map[string]any{"op": "publish", "topic": topic, "bytes": len(b)}
	if cs.publishes >= MaxPublishesPerCall || len(b) > MaxIPCPayload {
		act, _ := cs.capsuleAction("ipc", args, "ipc publish "+topic)
		reason := fmt.Sprintf("more than %d ipc messages in one call", MaxPublishesPerCall)
		if len(b) > MaxIPCPayload {
			reason = fmt.Sprintf("ipc message of %d bytes, more than %d", len(b), MaxIPCPayload)
		}
		err := cs.refuse(ctx, act.Kind, act.Resource, act.Args, RuleLimit, reason)
		if cs.publishes >= MaxPublishesPerCall {
			// NOTE: a flood ends the call: one audit entry, not one per
			// message the capsule would go on trying.
			return nil, &killError{reason: err.Error()}
		}
		return nil, err
	}
	cs.publishes++
	msg := sdk.Message{Topic: topic, From: cs.c.id, Payload: append([]byte(nil), b...)}
	return cs.gated(ctx, "ipc", declared, args, "ipc publish "+topic, func(context.Context) ([]byte, error) {
		if err := m.bus.publish(busTopic(cs.c.id, topic), msg); err != nil {
			return nil, hostErrf(sdk.StatusLimit, "ipc publish %s: %v", topic, err)
		}
		return nil, nil
	})
}

func (m *Manager) ipcSubscribe(ctx context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	topic := string(a)
	declared := slices.Contains(cs.c.caps.IPC, topic)
	return cs.gated(ctx, "ipc", declared, map[string]string{"op": "subscribe", "topic": topic}, "ipc subscribe "+topic, func(context.Context) ([]byte, error) {
		m.bus.subscribe(busTopic(cs.c.id, topic), cs.c.id)
		return nil, nil
	})
}

// ipcPoll is not gated by the interceptor: it only returns messages of a
// subscription the interceptor allowed.
func (m *Manager) ipcPoll(_ context.Context, cs *callState, a, _ []byte) ([]byte, error) {
	topic := string(a)
	msgs, ok := m.bus.poll(busTopic(cs.c.id, topic), cs.c.id)
	if !ok {
		return nil, hostErrf(sdk.StatusNotFound, "not subscribed to %q", clipString(topic, 64))
	}
	for i := range msgs {
		msgs[i].Topic = topic
	}
	if msgs == nil {
		msgs = []sdk.Message{}
	}
	return json.Marshal(msgs)
}
