package client

// LeaderURL exposes the leader the client currently believes in ("" if
// none), for tests.
func (c *Client) LeaderURL() string {
	if l := c.leader.Load(); l != nil {
		return *l
	}
	return ""
}

// KeyPath exposes keyPath for tests.
var KeyPath = keyPath
