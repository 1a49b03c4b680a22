package capability

// index finds the tokens whose pattern may match a resource without
// looking at every token. Each pattern is filed in a trie, per kind, under
// its leading literal segments (Pattern.indexKey); a lookup walks the
// resource's segments (Resource.indexPath) from the root and collects the
// entries of every node it passes. Invariant: if a pattern matches a
// resource, its key is a prefix of the resource's path, so the walk visits
// its node; candidates are then matched exactly. Not safe for concurrent
// use: Service guards it.
type index struct {
	roots [KindCapsule + 1]*node
	byID  map[ID]*entry
}

type node struct {
	children map[string]*node
	entries  []*entry
}

type entry struct {
	t    *Token
	enc  []byte
	pat  Pattern
	node *node
}

func newIndex() *index { return &index{byID: map[ID]*entry{}} }

// add files a verified token; tokens whose pattern does not parse (they
// cannot verify either) are ignored.
func (x *index) add(t *Token, enc []byte) {
	pat, err := ParsePattern(t.Resource)
	if err != nil {
		return
	}
	x.remove(t.ID)
	n := x.roots[pat.kind]
	if n == nil {
		n = &node{}
		x.roots[pat.kind] = n
	}
	for _, seg := range pat.indexKey() {
		c := n.children[seg]
		if c == nil {
			if n.children == nil {
				n.children = map[string]*node{}
			}
			c = &node{}
			n.children[seg] = c
		}
		n = c
	}
	e := &entry{t: t, enc: enc, pat: pat, node: n}
	n.entries = append(n.entries, e)
	x.byID[t.ID] = e
}

// remove drops a token; empty nodes are left in place (they are cheap and
// reused when the index is rebuilt by Reload).
func (x *index) remove(id ID) {
	e, ok := x.byID[id]
	if !ok {
		return
	}
	delete(x.byID, id)
	es := e.node.entries
	for i, o := range es {
		if o == e {
			es[i] = es[len(es)-1]
			es[len(es)-1] = nil
			e.node.entries = es[:len(es)-1]
			break
		}
	}
}

// walk calls f for every entry filed on the path of r.
func (x *index) walk(r Resource, f func(*entry)) {
	n := x.roots[r.kind]
	if n == nil {
		return
	}
	path := r.indexPath()
	for i := 0; ; i++ {
		for _, e := range n.entries {
			f(e)
		}
		if i == len(path) {
			return
		}
		if n = n.children[path[i]]; n == nil {
			return
		}
	}
}

// len returns the number of indexed tokens.
func (x *index) len() int { return len(x.byID) }
