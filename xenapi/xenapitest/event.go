package xenapitest

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// subscription is one parsed event.from class entry.
type subscription struct {
	cls *class // nil: every class
	ref string // "" unless "class/ref"
}

func parseSubscriptions(subs []string) ([]subscription, error) {
	out := make([]subscription, 0, len(subs))
	for _, s := range subs {
		if s == "*" {
			out = append(out, subscription{})
			continue
		}
		name, ref, _ := strings.Cut(s, "/")
		var cls *class
		for _, c := range classesOrdered {
			if strings.EqualFold(c.name, name) {
				cls = c
			}
		}
		if cls == nil {
			return nil, fail(ErrEventSubscriptionParseFailure, s)
		}
		out = append(out, subscription{cls: cls, ref: ref})
	}
	return out, nil
}

func (s subscription) matches(cls *class, ref string) bool {
	if s.cls == nil {
		return cls != classSession
	}
	return s.cls == cls && (s.ref == "" || s.ref == ref)
}

func parseToken(tok string) (uint64, error) {
	if tok == "" {
		return 0, nil
	}
	first, _, _ := strings.Cut(tok, ",")
	n, err := strconv.ParseUint(strings.TrimSpace(first), 10, 64)
	if err != nil {
		return 0, fail(ErrEventFromTokenParseFailure, tok)
	}
	return n, nil
}

func formatToken(gen uint64) string { return fmt.Sprintf("%020d,%020d", gen, 0) }

type pendingEvent struct {
	gen uint64
	ev  map[string]any
}

// collectEvents returns the events after generation since for subs. The
// caller holds p.mu.
func (p *Pool) collectEvents(subs []subscription, since uint64) []pendingEvent {
	match := func(cls *class, ref string) bool {
		for _, s := range subs {
			if s.matches(cls, ref) {
				return true
			}
		}
		return false
	}
	var out []pendingEvent
	ts := fmt.Sprintf("%d.", p.now().Unix())
	for _, o := range p.objs {
		if o.modified <= since || !match(o.cls, o.ref) {
			continue
		}
		op := "mod"
		if o.created > since {
			op = "add"
		}
		out = append(out, pendingEvent{gen: o.modified, ev: map[string]any{
			"id": strconv.FormatUint(o.modified, 10), "timestamp": ts, "class": strings.ToLower(o.cls.name),
			"operation": op, "ref": o.ref, "snapshot": o.record(),
		}})
	}
	for _, t := range p.tombstones {
		if t.gen <= since || !match(t.cls, t.ref) {
			continue
		}
		out = append(out, pendingEvent{gen: t.gen, ev: map[string]any{
			"id": strconv.FormatUint(t.gen, 10), "timestamp": ts, "class": strings.ToLower(t.cls.name),
			"operation": "del", "ref": t.ref,
		}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].gen < out[j].gen })
	return out
}

func (t methodTable) addEvent() {
	t.add(&method{name: "event.from", params: []string{"classes", "token", "timeout"}, mandatory: 3, session: true, unlocked: true,
		fn: func(c *call, a *args) (any, error) {
			classes, token, timeout := a.set(0), a.str(1), a.float(2)
			if a.err != nil {
				return nil, a.err
			}
			subs, err := parseSubscriptions(classes)
			if err != nil {
				return nil, err
			}
			since, err := parseToken(token)
			if err != nil {
				return nil, err
			}
			if math.IsNaN(timeout) || timeout < 0 {
				timeout = 0
			}
			wait := DefaultEventTimeout
			if timeout < wait.Seconds() {
				wait = time.Duration(timeout * float64(time.Second))
			}
			timer := time.NewTimer(wait)
			defer timer.Stop()
			for {
				c.p.mu.Lock()
				evs := c.p.collectEvents(subs, since)
				gen, ch := c.p.gen, c.p.notify
				c.p.mu.Unlock()
				expired := false
				if len(evs) == 0 {
					select {
					case <-ch:
						continue
					case <-timer.C:
						expired = true
					case <-c.ctx.Done():
						return nil, c.ctx.Err()
					case <-c.p.done:
						expired = true
					}
				}
				if len(evs) > 0 || expired {
					list := make([]any, len(evs))
					counts := map[string]any{}
					for i, e := range evs {
						list[i] = e.ev
						counts[e.ev["class"].(string)] = "0"
					}
					c.p.mu.Lock()
					for _, cl := range classesOrdered {
						k := strings.ToLower(cl.name)
						if _, ok := counts[k]; ok {
							counts[k] = strconv.Itoa(len(c.p.byClass[cl]))
						}
					}
					c.p.mu.Unlock()
					return map[string]any{"events": list, "valid_ref_counts": counts, "token": formatToken(gen)}, nil
				}
			}
		}})
	t.sessionCall("event.inject", false, func(c *call, a *args) (any, error) {
		subs, err := parseSubscriptions([]string{a.str(0)})
		if err != nil || subs[0].cls == nil {
			return nil, fail(ErrEventSubscriptionParseFailure, a.str(0))
		}
		o, err := c.p.get(subs[0].cls, a.str(1))
		if err != nil {
			return nil, err
		}
		c.p.touch(o)
		return formatToken(c.p.gen), nil
	}, "class", "ref")
}
