package dnsserver

import "maps"

const shardCount = 256

// shardMap is a map split in shards, copied on write shard by shard: a
// patched snapshot clones only the shards a change touches (a few of 256)
// and shares the rest with the snapshot it came from.
type shardMap[V any] struct {
	s     [shardCount]map[string]V
	owned [shardCount]bool // this copy made the shard and may write it
}

func shardOfString(k string) uint8 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return uint8(h ^ h>>8 ^ h>>16 ^ h>>24)
}

func shardOfBytes(k []byte) uint8 {
	h := uint32(2166136261)
	for _, c := range k {
		h ^= uint32(c)
		h *= 16777619
	}
	return uint8(h ^ h>>8 ^ h>>16 ^ h>>24)
}

func (m *shardMap[V]) get(k string) (V, bool) {
	v, ok := m.s[shardOfString(k)][k]
	return v, ok
}

// getBytes looks a []byte key up without allocating.
func (m *shardMap[V]) getBytes(k []byte) V {
	return m.s[shardOfBytes(k)][string(k)]
}

func (m *shardMap[V]) writable(i uint8) map[string]V {
	if !m.owned[i] {
		if m.s[i] == nil {
			m.s[i] = map[string]V{}
		} else {
			m.s[i] = maps.Clone(m.s[i])
		}
		m.owned[i] = true
	}
	return m.s[i]
}

func (m *shardMap[V]) set(k string, v V) { m.writable(shardOfString(k))[k] = v }

func (m *shardMap[V]) del(k string) {
	i := shardOfString(k)
	if _, ok := m.s[i][k]; ok {
		delete(m.writable(i), k)
	}
}

// clone shares every shard; writes then copy the shard they touch.
func (m *shardMap[V]) clone() *shardMap[V] { return &shardMap[V]{s: m.s} }

func (m *shardMap[V]) each(fn func(k string, v V)) {
	for _, s := range m.s {
		for k, v := range s {
			fn(k, v)
		}
	}
}
