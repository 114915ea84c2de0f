package xenapitest

import (
	"context"
	"strconv"
)

// PluginFunc implements a dom0 plugin function for host.call_plugin. It
// runs without the pool lock; a *Failure it returns reaches the caller
// unchanged, any other error becomes XENAPI_PLUGIN_FAILURE.
type PluginFunc func(ctx context.Context, host *Host, fn string, args map[string]string) (string, error)

// RegisterPlugin makes host.call_plugin(host, plugin, ...) call fn. Calls
// to plugins not registered fail with XENAPI_MISSING_PLUGIN [plugin].
func (p *Pool) RegisterPlugin(plugin string, fn PluginFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plugins[plugin] = fn
}

func (p *Pool) buildMethods() methodTable {
	t := methodTable{}
	for _, cls := range classesOrdered {
		t.addGeneric(cls)
	}
	t.addSession()
	t.addHost()
	t.addVM()
	t.addVBD()
	t.addNetwork()
	t.addStorage()
	t.addTask()
	t.addEvent()
	if p.opts.ResizeOnline {
		t["VDI.resize_online"].removed = false
	}
	return t
}

func (t methodTable) addSession() {
	t.add(&method{name: "session.login_with_password", params: []string{"uname", "pwd", "version", "originator"}, mandatory: 2,
		fn: func(c *call, a *args) (any, error) {
			user, pwd := a.str(0), a.str(1)
			originator := ""
			if a.present(3) {
				originator = a.str(3)
			}
			if a.err != nil {
				return nil, a.err
			}
			if user != c.p.opts.User || pwd != c.p.opts.Password {
				return nil, fail(ErrSessionAuthenticationFailed)
			}
			return c.p.newSession(user, originator), nil
		}})
	t.add(&method{name: "session.logout", session: true, fn: func(c *call, a *args) (any, error) {
		if s, ok := c.p.objs[c.session]; ok {
			c.p.deleteObject(s)
		}
		return nil, nil
	}})
	t.sessionCall("session.get_all_subject_identifiers", false, func(c *call, a *args) (any, error) {
		return []any{}, nil
	})
}

func (t methodTable) addHost() {
	t.sessionCall("host.compute_free_memory", false, func(c *call, a *args) (any, error) {
		h, err := c.p.get(classHost, a.str(0))
		if err != nil {
			return nil, err
		}
		return strconv.FormatInt(c.p.hostFreeMemory(h), 10), nil
	}, "host")
	t.sessionCall("host.get_servertime", false, func(c *call, a *args) (any, error) {
		if _, err := c.p.get(classHost, a.str(0)); err != nil {
			return nil, err
		}
		return c.p.now(), nil
	}, "host")
	t.add(&method{name: "host.call_plugin", params: []string{"host", "plugin", "fn", "args"}, mandatory: 4, session: true, async: true, unlocked: true,
		fn: func(c *call, a *args) (any, error) {
			hostRef, plugin, fn, pargs := a.str(0), a.str(1), a.str(2), a.mapv(3)
			if a.err != nil {
				return nil, a.err
			}
			c.p.mu.Lock()
			_, err := c.p.get(classHost, hostRef)
			impl := c.p.plugins[plugin]
			var host *Host
			for _, h := range c.p.hosts {
				if h.ref == hostRef {
					host = h
				}
			}
			c.p.mu.Unlock()
			if err != nil {
				return nil, err
			}
			if impl == nil {
				return nil, fail(ErrXenAPIMissingPlugin, plugin)
			}
			out, err := impl(c.ctx, host, fn, pargs)
			if err != nil {
				if f, ok := err.(*Failure); ok {
					return nil, f
				}
				return nil, fail(ErrXenAPIPluginFailure, fn, "Exception", err.Error())
			}
			return out, nil
		}})
}
