package spec

import (
	"strconv"
	"time"
)

// Defaults the schema documents and the decoder fills in, so that the engine
// reads a complete policy.
const (
	defaultAttempts   = 1
	defaultBackoff    = 10 * time.Second
	defaultMaxBackoff = 5 * time.Minute
)

// decode builds a Spec from the YAML tree. It is tolerant: a field of the
// wrong type is left at its zero value, because the schema has already
// reported it and the semantic checks should still see the rest.
func decode(root *ynode) *Spec {
	s := &Spec{}
	if root == nil || root.kind != mapNode {
		return s
	}
	if v, ok := root.get("version").scalar().(int); ok {
		s.Version = v
	}
	s.Name = str(root.get("name"))
	s.Description = str(root.get("description"))
	s.Env = kvs(root.get("env"))
	if v, ok := root.get("concurrency").scalar().(int); ok {
		s.Concurrency = v
	}
	s.State = str(root.get("state"))
	switch v := root.get("budget").scalar().(type) {
	case int:
		s.Budget = float64(v)
	case float64:
		s.Budget = v
	}
	if v, ok := root.get("max_host_losses").scalar().(int); ok {
		s.MaxHostLosses = v
	}
	if v, ok := root.get("fail_fast").scalar().(bool); ok {
		s.KeepGoing = !v
	}
	if rs := root.get("resources"); rs != nil && rs.kind == mapNode {
		for _, k := range rs.keys {
			if n, ok := k.val.scalar().(int); ok {
				s.Resources = append(s.Resources, Resource{Name: k.name, Limit: n, Pos: k.pos})
			}
		}
	}
	if ps := root.get("params"); ps != nil && ps.kind == mapNode {
		for _, k := range ps.keys {
			s.Params = append(s.Params, decodeParam(k))
		}
	}
	if hs := root.get("hosts"); hs != nil && hs.kind == mapNode {
		for _, k := range hs.keys {
			h := HostDecl{Name: k.name, Pos: k.pos, Address: str(k.val.get("address"))}
			if c, ok := k.val.get("cards").scalar().(int); ok {
				h.Cards = c
			}
			s.Hosts = append(s.Hosts, h)
		}
	}
	if st := root.get("steps"); st != nil && st.kind == seqNode {
		s.Steps = make([]Step, 0, len(st.items))
		for _, it := range st.items {
			if it.kind == mapNode {
				s.Steps = append(s.Steps, decodeStep(it))
			}
		}
	}
	return s
}

func decodeParam(k ykey) Param {
	p := Param{Name: k.name, Pos: k.pos, Type: "string"}
	if t := str(k.val.get("type")); t != "" {
		p.Type = t
	}
	if d := k.val.get("default"); d != nil && d.kind == scalarNode {
		p.Default = d.val
	}
	if e := k.val.get("enum"); e != nil && e.kind == seqNode {
		for _, it := range e.items {
			p.Enum = append(p.Enum, it.value())
		}
	}
	p.Description = str(k.val.get("description"))
	p.Secret, _ = k.val.get("secret").scalar().(bool)
	p.From = str(k.val.get("from"))
	return p
}

func decodeStep(n *ynode) Step {
	st := Step{
		ID:       str(n.get("id")),
		Type:     str(n.get("type")),
		If:       str(n.get("if")),
		Host:     str(n.get("host")),
		Holds:    str(n.get("holds")),
		Pos:      n.pos,
		FieldPos: make(map[string]Pos, len(n.keys)+4),
		Retry:    Retry{Attempts: defaultAttempts, Backoff: defaultBackoff, MaxBackoff: defaultMaxBackoff},
	}
	for _, k := range n.keys {
		st.FieldPos[k.name] = k.val.pos
		switch k.name {
		case "with", "env", "retry", "matrix":
			if k.val.kind == mapNode {
				for _, sub := range k.val.keys {
					st.FieldPos[k.name+"."+sub.name] = sub.val.pos
				}
			}
		}
	}
	if needs := n.get("needs"); needs != nil && needs.kind == seqNode {
		for i, it := range needs.items {
			if s, ok := it.val.(string); ok && it.kind == scalarNode {
				st.Needs = append(st.Needs, s)
				st.FieldPos["needs["+strconv.Itoa(i)+"]"] = it.pos
			}
		}
	}
	if cleans := n.get("cleans"); cleans != nil && cleans.kind == seqNode {
		for i, it := range cleans.items {
			if s, ok := it.val.(string); ok && it.kind == scalarNode {
				st.Cleans = append(st.Cleans, s)
				st.FieldPos["cleans["+strconv.Itoa(i)+"]"] = it.pos
			}
		}
	}
	if w := n.get("with"); w != nil && w.kind == mapNode {
		st.With, _ = w.value().(map[string]any)
	}
	if st.With == nil {
		st.With = map[string]any{}
	}
	if r := n.get("retry"); r != nil && r.kind == mapNode {
		if a, ok := r.get("attempts").scalar().(int); ok {
			st.Retry.Attempts = a
		}
		if d, ok := duration(r.get("backoff")); ok {
			st.Retry.Backoff = d
		}
		if d, ok := duration(r.get("max_backoff")); ok {
			st.Retry.MaxBackoff = d
		}
		if on := r.get("on"); on != nil && on.kind == seqNode {
			for _, it := range on.items {
				if s, ok := it.scalar().(string); ok {
					st.Retry.On = append(st.Retry.On, s)
				}
			}
		}
	}
	if d, ok := duration(n.get("timeout")); ok {
		st.Timeout = d
	}
	st.Env = kvs(n.get("env"))
	if m := n.get("matrix"); m != nil && m.kind == mapNode {
		for _, k := range m.keys {
			ax := MatrixAxis{Name: k.name}
			if k.val.kind == seqNode {
				for _, it := range k.val.items {
					if it.kind == scalarNode {
						ax.Values = append(ax.Values, it.val)
					}
				}
			}
			st.Matrix = append(st.Matrix, ax)
		}
	}
	return st
}

func str(n *ynode) string {
	s, _ := n.scalar().(string)
	return s
}

func kvs(n *ynode) []KV {
	if n == nil || n.kind != mapNode {
		return nil
	}
	out := make([]KV, 0, len(n.keys))
	for _, k := range n.keys {
		if k.val.kind == scalarNode {
			out = append(out, KV{Key: k.name, Value: scalarString(k.val.val)})
		}
	}
	return out
}

func duration(n *ynode) (time.Duration, bool) {
	s, ok := n.scalar().(string)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}
