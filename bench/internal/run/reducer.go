package run

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/omninode/onex-fleet/bench/internal/ceiling"
	"github.com/omninode/onex-fleet/bench/internal/procs"
	"github.com/omninode/onex-fleet/bench/internal/report"
	"github.com/omninode/onex-fleet/bench/internal/seed"
	"github.com/omninode/onex-fleet/pkg/node/sim"
	"github.com/omninode/onex-fleet/services/reducer/decide"
)

// apiEndpoints gives planned nodes an api endpoint instead of a health
// endpoint: the reducer then derives a Consul service without an HTTP
// check (docs/performance.md, "Consul checks").
func apiEndpoints(plan []sim.Planned) {
	for i := range plan {
		id := plan[i].Identity.NodeID
		plan[i].Identity.Endpoints = map[string]string{"api": fmt.Sprintf("http://127.0.0.1:9/nodes/%s", id)}
	}
}

// benchParams are the reducer parameters the services run with (see
// newFleet): liveness long enough that no node expires during the run.
func benchParams() decide.Params {
	p := decide.DefaultParams()
	p.LivenessInterval = time.Hour
	p.LivenessWindow = time.Hour
	return p
}

// reducerPhase seeds Nodes ACTIVE nodes (projection rows through the raw
// PostgreSQL upsert, which is also the PostgreSQL ceiling; snapshots on the
// snapshot topic), restarts the reducer and measures its restore, the cost
// of its ticks with every node ACTIVE and none due, and its memory per node.
func (b *bench) reducerPhase(ctx context.Context) error {
	plan := sim.Plan(sim.Options{Nodes: b.s.Nodes, Seed: b.env + "/fleet"}, "")
	apiEndpoints(plan)
	at := time.Now().UTC().Truncate(time.Microsecond)
	nodes, err := seed.Active(plan, at, benchParams())
	if err != nil {
		return err
	}
	b.seeded = nodes
	ids := make([]uuid.UUID, len(nodes))
	rows := make([]ceiling.Row, len(nodes))
	for i, n := range nodes {
		ids[i] = n.State.NodeID
		rows[i] = seed.Row(n.State)
	}
	b.remember(ids)

	err = b.measure(ctx, "seed", -1, func(ctx context.Context) error {
		ins, err := ceiling.Postgres(ctx, b.pool, rows, 500, 6, ceiling.MultiRow)
		if err != nil {
			return err
		}
		// Rows again: every statement now updates an existing row (non-HOT,
		// like a heartbeat's update). This is the ceiling; 30 % of the
		// fleet is plenty to measure it, 10 % for the slower pipelined way.
		touch := time.Now().UTC()
		for i := range rows {
			rows[i].UpdatedAt = touch
		}
		upd, err := ceiling.Postgres(ctx, b.pool, rows[:len(rows)*3/10], 500, 6, ceiling.MultiRow)
		if err != nil {
			return err
		}
		pipe, err := ceiling.Postgres(ctx, b.pool, rows[len(rows)*3/10:len(rows)*4/10], 500, 6, ceiling.Pipelined)
		if err != nil {
			return err
		}
		b.pg = upd.PerSecond()
		b.res.Detail("ceiling_postgres_insert_rows_per_s", ins.PerSecond())
		b.res.Detail("ceiling_postgres_update_rows_per_s", upd.PerSecond())
		b.res.Detail("postgres_update_rows_per_s_pipelined_statements", pipe.PerSecond())
		b.log.Info("bench: postgres ceiling", "insert_per_s", int(ins.PerSecond()), "update_per_s", int(upd.PerSecond()),
			"pipelined_update_per_s", int(pipe.PerSecond()))
		bytes, err := seed.Publish(ctx, b.s.Brokers, b.snapshotTopic(), nodes, at)
		if err != nil {
			return err
		}
		b.res.Detail("seed_snapshot_bytes_per_node", float64(bytes)/float64(len(nodes)))
		return nil
	})
	if err != nil {
		return err
	}
	return b.measure(ctx, "reducer-restart", -1, func(ctx context.Context) error { return b.restartReducer(ctx) })
}

func (b *bench) restartReducer(ctx context.Context) error {
	red := b.fleet.svc[Reducer]
	m0, err := red.Metrics(ctx)
	if err != nil {
		return err
	}
	nodes0 := m0.Sum("onex_reducer_nodes", nil)
	rss0, err := procs.RSS(red.Pid())
	if err != nil {
		return err
	}
	heap0 := m0.Sum("go_memstats_heap_inuse_bytes", nil)

	off := fileSize(red.LogPath)
	if err := red.Stop(30 * time.Second); err != nil {
		b.log.Warn("bench: reducer stop", "error", err)
	}
	started := time.Now()
	if err := red.Start(); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := red.WaitReady(rctx); err != nil {
		return err
	}
	ready := time.Since(started)
	lines, err := readLog(red.LogPath, off)
	if err != nil {
		return err
	}
	var assigned, restored time.Time
	restoredNodes, partitions := 0, 0
	var slowest int64
	for _, l := range lines {
		switch l.Msg {
		case "partitions assigned":
			if assigned.IsZero() {
				assigned = l.Time
			}
		case "state restored":
			restored = l.Time
			restoredNodes += l.Nodes
			partitions++
			slowest = max(slowest, l.TookMS)
		}
	}
	if assigned.IsZero() || partitions == 0 {
		return fmt.Errorf("reducer log has no restore lines after the restart (%s)", red.LogPath)
	}
	wall := restored.Sub(assigned)
	b.log.Info("bench: reducer restored", "nodes", restoredNodes, "partitions", partitions, "wall", wall, "slowest_partition_ms", slowest, "start_to_ready", ready)

	// Let the restore's garbage be collected and ticks run, then measure
	// ticks over a window with every node ACTIVE and none due.
	time.Sleep(5 * time.Second)
	m1, err := red.Metrics(ctx)
	if err != nil {
		return err
	}
	s1, c1 := m1.Histogram("onex_reducer_tick_seconds", nil)
	time.Sleep(10 * time.Second)
	m2, err := red.Metrics(ctx)
	if err != nil {
		return err
	}
	s2, c2 := m2.Histogram("onex_reducer_tick_seconds", nil)
	rss1, err := procs.RSS(red.Pid())
	if err != nil {
		return err
	}
	nodes1 := m2.Sum("onex_reducer_nodes", nil)
	active := m2.Sum("onex_reducer_nodes", map[string]string{"state": "active"})
	heap1 := m2.Sum("go_memstats_heap_inuse_bytes", nil)

	per100k := wall.Seconds() * 100_000 / float64(max(restoredNodes, 1))
	b.res.Add(report.Figure{ID: "reducer_restore", Name: "Reducer: restore 100,000 nodes after restart", Unit: "s",
		Value: per100k, Target: "≤ 3 s", Met: report.Bool(per100k <= 3),
		Note: fmt.Sprintf("the restarted reducer restored %d nodes (%d seeded) on %d partitions in parallel in %.2f s, from its "+
			"first assignment to its last partition restored; the figure scales that to 100,000 nodes. Slowest partition %d ms; "+
			"process start to ready %.2f s (includes the consumer group join).",
			restoredNodes, b.s.Nodes, partitions, wall.Seconds(), slowest, ready.Seconds())})
	b.res.Detail("reducer_restore_wall_s", wall.Seconds())
	b.res.Detail("reducer_restored_nodes", float64(restoredNodes))
	b.res.Detail("reducer_start_to_ready_s", ready.Seconds())

	if c2 > c1 {
		mean := (s2 - s1) / float64(c2-c1)
		b.res.Add(report.Figure{ID: "reducer_tick", Name: "Reducer: one tick, 100,000 ACTIVE nodes, none due", Unit: "ms",
			Value: mean * 1000, Target: "≤ 1 ms", Met: report.Bool(mean <= 0.001),
			Note: fmt.Sprintf("mean decision time of the %d ticks the running reducer handled in 10 s (one per partition per tick; "+
				"%.0f ACTIVE nodes across its partitions), from onex_reducer_tick_seconds", c2-c1, active)})
	} else {
		b.res.Note("no ticks reached the reducer during the tick window")
	}
	if dn := nodes1 - nodes0; dn > 0 {
		perNode := float64(rss1-rss0) / dn
		b.res.Add(report.Figure{ID: "reducer_memory", Name: "Reducer: resident memory per node", Unit: "B",
			Value: perNode, Target: "≤ 1024 B", Met: report.Bool(perNode <= 1024),
			Note: fmt.Sprintf("RSS %.0f MiB holding %.0f nodes after the restart against %.0f MiB holding %.0f before it; "+
				"Go heap in use %.0f → %.0f MiB (%.0f B/node)", float64(rss1)/(1<<20), nodes1, float64(rss0)/(1<<20), nodes0,
				heap0/(1<<20), heap1/(1<<20), (heap1-heap0)/dn)})
		b.res.Detail("reducer_heap_bytes_per_node", (heap1-heap0)/dn)
	}
	return nil
}
