// Package livesync keeps the target caught up: the applier replays the
// capture's journal onto the target, each row's writes in the order the
// source applied them (writes of other rows may pass one still waiting
// for its outcome), repairs the writes left uncertain, measures the lag
// and trims what it applied; the syncer arms the capture, watches the
// source's schema for changes made around the proxy, and runs the switch
// (hold, drain, check, route, release).
package livesync
