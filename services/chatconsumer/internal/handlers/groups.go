package handlers

import (
	"sync"

	chatv1 "github.com/activitychat/chat/gen/chat/v1"
)

// groupCacheSize bounds the groups remembered per generation; up to twice as
// many are kept.
const groupCacheSize = 10_000

// groupCache remembers the group of each activity, saving the
// GetGroupByActivityId call on every join and leave. It is safe because an
// activity's group never changes once created: CreateGroup returns the
// existing group for an activity that has one, and groups are never renamed
// or deleted. Should a cached group still vanish (a chat database reset
// under a running consumer), the write on it fails with not_found, the
// handler forgets the entry and the event is retried with a fresh lookup.
//
// It keeps two generations of maps: when the current one is full it becomes
// the previous one, and a hit in the previous one is promoted. Lookups and
// inserts are O(1) and the memory is bounded.
type groupCache struct {
	mu        sync.Mutex
	cur, prev map[string]*chatv1.Group
}

func newGroupCache() *groupCache {
	return &groupCache{cur: make(map[string]*chatv1.Group)}
}

func (c *groupCache) get(activityID string) *chatv1.Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.cur[activityID]; ok {
		return g
	}
	if g, ok := c.prev[activityID]; ok {
		c.putLocked(activityID, g)
		return g
	}
	return nil
}

func (c *groupCache) put(activityID string, g *chatv1.Group) {
	if g.GetGroupId() == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(activityID, g)
}

func (c *groupCache) putLocked(activityID string, g *chatv1.Group) {
	if len(c.cur) >= groupCacheSize {
		c.prev, c.cur = c.cur, make(map[string]*chatv1.Group, groupCacheSize)
	}
	c.cur[activityID] = g
}

func (c *groupCache) forget(activityID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, activityID)
	delete(c.prev, activityID)
}
