package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// loadResult is the one JSON line the load scenario prints.
type loadResult struct {
	RPC            string   `json:"rpc"`
	Concurrency    int      `json:"concurrency"`
	Calls          int64    `json:"calls"`
	Errors         int64    `json:"errors"`
	Seconds        float64  `json:"seconds"`
	CallsPerSecond float64  `json:"callsPerSecond"`
	P50Ms          *float64 `json:"p50Ms"` // null when no call succeeded
	P99Ms          *float64 `json:"p99Ms"`
	FirstError     string   `json:"firstError,omitempty"`
}

// loadCalls are the cheap RPCs whose cost is the gRPC stack itself, not LVM.
var loadCalls = map[string]func(conn *grpc.ClientConn) func(ctx context.Context) error{
	"Probe": func(conn *grpc.ClientConn) func(ctx context.Context) error {
		identity := csi.NewIdentityClient(conn)
		return func(ctx context.Context) error {
			_, err := identity.Probe(ctx, &csi.ProbeRequest{})
			return err
		}
	},
	"GetPluginCapabilities": func(conn *grpc.ClientConn) func(ctx context.Context) error {
		identity := csi.NewIdentityClient(conn)
		return func(ctx context.Context) error {
			_, err := identity.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
			return err
		}
	},
	"NodeGetCapabilities": func(conn *grpc.ClientConn) func(ctx context.Context) error {
		node := csi.NewNodeClient(conn)
		return func(ctx context.Context) error {
			_, err := node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
			return err
		}
	},
}

// runLoad keeps opts.concurrency goroutines calling one RPC back to back over
// one connection (as a sidecar shares its connection). After opts.warmup of
// the same load, every call that completes is counted; after opts.duration no
// call starts, and the calls in flight are waited for and counted too, so an
// RPC slower than the window still yields samples. Rate = calls / (time from
// the start of counting to the last completion).
func runLoad(conn *grpc.ClientConn, opts options) error {
	makeCall, ok := loadCalls[opts.rpc]
	if !ok {
		return fmt.Errorf("--rpc %q: want Probe, GetPluginCapabilities or NodeGetCapabilities", opts.rpc)
	}
	if opts.concurrency < 1 || opts.duration <= 0 {
		return fmt.Errorf("--concurrency must be >= 1 and --duration > 0")
	}
	call := makeCall(conn)

	var counting, stopping atomic.Bool
	var calls, errors atomic.Int64
	var firstError atomic.Value
	latencies := make([][]float64, opts.concurrency)
	var wg sync.WaitGroup
	for g := 0; g < opts.concurrency; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for !stopping.Load() {
				ctx, cancel := callContext(opts)
				start := time.Now()
				err := call(ctx)
				elapsed := since(start)
				cancel()
				if !counting.Load() {
					continue
				}
				calls.Add(1)
				if err != nil {
					errors.Add(1)
					firstError.CompareAndSwap(nil, err.Error())
					continue
				}
				latencies[g] = append(latencies[g], elapsed)
			}
		}(g)
	}
	time.Sleep(opts.warmup)
	begin := time.Now()
	counting.Store(true)
	time.Sleep(opts.duration)
	stopping.Store(true)
	wg.Wait()
	seconds := time.Since(begin).Seconds()

	all := []float64{}
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Float64s(all)
	result := loadResult{
		RPC:            opts.rpc,
		Concurrency:    opts.concurrency,
		Calls:          calls.Load(),
		Errors:         errors.Load(),
		Seconds:        seconds,
		CallsPerSecond: float64(calls.Load()) / seconds,
		P50Ms:          percentile(all, 50),
		P99Ms:          percentile(all, 99),
	}
	if e, ok := firstError.Load().(string); ok {
		result.FirstError = e
	}
	out, err := json.Marshal(result)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	if result.Errors > 0 {
		fmt.Fprintf(os.Stderr, "csi-client: load: %d of %d calls failed, first: %s\n", result.Errors, result.Calls, result.FirstError)
	}
	return nil
}

// percentile is nearest-rank on sorted values: the smallest sample with at
// least p % of the samples at or below it (nil when there are none).
func percentile(sorted []float64, p float64) *float64 {
	if len(sorted) == 0 {
		return nil
	}
	rank := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(sorted) {
		rank = len(sorted) - 1
	}
	v := sorted[rank]
	return &v
}
