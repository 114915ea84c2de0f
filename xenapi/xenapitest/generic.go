package xenapitest

// addGeneric registers the messages xapi generates for every class: get_record,
// get_by_uuid, get_all, get_all_records, get_all_records_where,
// get_by_name_label, get_<field>, and for RW fields set_<field>,
// add_to_/remove_from_<map> and add_/remove_<set>.
func (t methodTable) addGeneric(cls *class) {
	prefix := cls.name + "."
	t.sessionCall(prefix+"get_record", false, func(c *call, a *args) (any, error) {
		o, err := c.p.get(cls, a.str(0))
		if err != nil {
			return nil, err
		}
		return o.record(), nil
	}, "self")
	t.sessionCall(prefix+"get_by_uuid", false, func(c *call, a *args) (any, error) {
		uuid := a.str(0)
		o, ok := c.p.byUUID[cls.name+"/"+uuid]
		if !ok {
			return nil, fail(ErrUUIDInvalid, cls.name, uuid)
		}
		return o.ref, nil
	}, "uuid")
	if cls.listable {
		t.sessionCall(prefix+"get_all", false, func(c *call, a *args) (any, error) {
			objs := c.p.all(cls)
			out := make([]any, len(objs))
			for i, o := range objs {
				out[i] = o.ref
			}
			return out, nil
		})
		t.sessionCall(prefix+"get_all_records", false, func(c *call, a *args) (any, error) {
			out := map[string]any{}
			for _, o := range c.p.all(cls) {
				out[o.ref] = o.record()
			}
			return out, nil
		})
		t.sessionCall(prefix+"get_all_records_where", false, func(c *call, a *args) (any, error) {
			expr, err := parseWhere(a.str(0))
			if err != nil {
				return nil, err
			}
			out := map[string]any{}
			for _, o := range c.p.all(cls) {
				if expr.eval(o) {
					out[o.ref] = o.record()
				}
			}
			return out, nil
		}, "expr")
		t.sessionCall(prefix+"get_all_where", false, func(c *call, a *args) (any, error) {
			expr, err := parseWhere(a.str(0))
			if err != nil {
				return nil, err
			}
			out := []any{}
			for _, o := range c.p.all(cls) {
				if expr.eval(o) {
					out = append(out, o.ref)
				}
			}
			return out, nil
		}, "expr")
	}
	if cls.nameLabel {
		t.sessionCall(prefix+"get_by_name_label", false, func(c *call, a *args) (any, error) {
			label := a.str(0)
			out := []any{}
			for _, o := range c.p.all(cls) {
				if o.str("name_label") == label {
					out = append(out, o.ref)
				}
			}
			return out, nil
		}, "label")
	}
	for i := range cls.fields {
		fd := &cls.fields[i]
		t.sessionCall(prefix+"get_"+fd.name, false, func(c *call, a *args) (any, error) {
			o, err := c.p.get(cls, a.str(0))
			if err != nil {
				return nil, err
			}
			return o.wireField(fd.name), nil
		}, "self")
		if !fd.rw {
			continue
		}
		t.sessionCall(prefix+"set_"+fd.name, false, func(c *call, a *args) (any, error) {
			o, err := c.p.get(cls, a.str(0))
			if err != nil {
				return nil, err
			}
			v, ok := convertField(fd, a.v[1])
			if !ok {
				return nil, fail(ErrFieldTypeError, "value")
			}
			if m, isMap := v.(map[string]string); isMap && cls == classVM && fd.name == "blocked_operations" {
				v = canonicalVMOps(m)
			}
			o.f[fd.name] = v
			c.p.touch(o)
			return nil, nil
		}, "self", "value")
		switch fd.kind {
		case kMap:
			t.sessionCall(prefix+"add_to_"+fd.name, false, func(c *call, a *args) (any, error) {
				o, err := c.p.get(cls, a.str(0))
				if err != nil {
					return nil, err
				}
				key, value := a.str(1), a.str(2)
				if a.err != nil {
					return nil, a.err
				}
				if cls == classVM && fd.name == "blocked_operations" {
					key = canonicalVMOp(key)
				}
				m := o.mapv(fd.name)
				if _, dup := m[key]; dup {
					return nil, fail(ErrMapDuplicateKey, cls.name, fd.name, o.str("uuid"), key)
				}
				m[key] = value
				c.p.touch(o)
				return nil, nil
			}, "self", "key", "value")
			t.sessionCall(prefix+"remove_from_"+fd.name, false, func(c *call, a *args) (any, error) {
				o, err := c.p.get(cls, a.str(0))
				if err != nil {
					return nil, err
				}
				key := a.str(1)
				if cls == classVM && fd.name == "blocked_operations" {
					key = canonicalVMOp(key)
				}
				delete(o.mapv(fd.name), key)
				c.p.touch(o)
				return nil, nil
			}, "self", "key")
		case kSet:
			t.sessionCall(prefix+"add_"+fd.name, false, func(c *call, a *args) (any, error) {
				o, err := c.p.get(cls, a.str(0))
				if err != nil {
					return nil, err
				}
				o.addToSet(fd.name, a.str(1))
				c.p.touch(o)
				return nil, nil
			}, "self", "value")
			t.sessionCall(prefix+"remove_"+fd.name, false, func(c *call, a *args) (any, error) {
				o, err := c.p.get(cls, a.str(0))
				if err != nil {
					return nil, err
				}
				o.removeFromSet(fd.name, a.str(1))
				c.p.touch(o)
				return nil, nil
			}, "self", "value")
		}
	}
}

// createFromRecord reads a constructor record the way xapi's generated
// dispatcher does: fields in datamodel order, a missing field without a
// default fails with INTERNAL_ERROR naming it, extra keys are ignored.
func createFromRecord(cls *class, rec map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for i := range cls.fields {
		fd := &cls.fields[i]
		if !fd.ctor {
			continue
		}
		v, ok := rec[fd.name]
		if !ok {
			if fd.required {
				return nil, fail(ErrInternalError, `Server_helpers.Dispatcher_FieldNotFound("`+fd.name+`")`)
			}
			continue
		}
		cv, ok := convertField(fd, v)
		if !ok {
			return nil, fail(ErrFieldTypeError, fd.name)
		}
		out[fd.name] = cv
	}
	return out, nil
}
