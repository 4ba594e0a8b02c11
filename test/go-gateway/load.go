package main

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pb "smartflow/notificationpb"
)

// load is a closed-loop benchmark as the gateway would generate it: c.Conns connections of their own, each
// with c.Streams goroutines calling GetFeishuWebhook back to back until c.N calls are done, for users
// 1 … c.Users in turn (user 42 when c.Users is 0). It reports req/s and the p50 and p99 latency; Counts has
// the calls by status code.
//
//	{"op":"load","n":20000,"conns":4,"streams":16,"users":1000}
func (g *gateway) load(c *command) result {
	r := result{Op: "load", Code: "OK", Counts: map[string]int{}}
	if c.N <= 0 || c.Conns <= 0 || c.Streams <= 0 {
		r.Code, r.Message = "ClientError", "load needs n, conns and streams > 0"
		return r
	}
	conns := make([]*gateway, c.Conns)
	for i := range conns {
		conn, err := dial(g.addr)
		if err != nil {
			r.Code, r.Message = "ClientError", err.Error()
			return r
		}
		defer conn.conn.Close()
		conns[i] = conn
	}
	var issued int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	latencies := make([]float64, 0, c.N)
	start := time.Now()
	for _, conn := range conns {
		for s := 0; s < c.Streams; s++ {
			wg.Add(1)
			go func(conn *gateway) {
				defer wg.Done()
				for {
					i := atomic.AddInt64(&issued, 1)
					if i > int64(c.N) {
						return
					}
					user := int64(42)
					if c.Users > 0 {
						user = 1 + i%int64(c.Users)
					}
					t0 := time.Now()
					err := conn.conn.Invoke(context.Background(), service+"GetFeishuWebhook",
						&pb.GetFeishuWebhookRequest{UserId: user}, &pb.ChannelResponse{})
					ms := float64(time.Since(t0).Microseconds()) / 1000
					mu.Lock()
					latencies = append(latencies, ms)
					r.Counts[codeOf(err)]++
					mu.Unlock()
				}
			}(conn)
		}
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	sort.Float64s(latencies)
	at := func(q float64) float64 { return latencies[int(q*float64(len(latencies)-1))] }
	r.ElapsedMs = seconds * 1000
	r.Rps = float64(len(latencies)) / seconds
	r.P50Ms, r.P99Ms = at(0.5), at(0.99)
	return r
}
