// csi-client drives a CSI plugin over its Unix socket with grpc-go, the same
// library the Kubernetes sidecars and kubelet use, so the plugin is tested
// against a real foreign client rather than our own stubs.
//
// Usage:
//
//	csi-client --endpoint unix:///path/csi.sock [--authority-path] [flags] info|lifecycle|load|mounted|storm
//
// Every RPC of info and lifecycle prints one JSON line on stdout; load prints
// one summary line; mounted one line per sample; storm one line per volume and
// one for the whole storm. Any failure prints a JSON line
// with an "error" member, a message on stderr, and exits 1.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

type options struct {
	endpoint      string
	authorityPath bool
	name          string
	sizeBytes     int64
	fsType        string
	parameters    map[string]string
	callTimeout   time.Duration
	dialTimeout   time.Duration
	rpc           string
	concurrency   int
	duration      time.Duration
	warmup        time.Duration
	count         int
	kubeletDir    string
}

type keyValues map[string]string

func (kv keyValues) String() string {
	parts := make([]string, 0, len(kv))
	for k, v := range kv {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	kv[k] = v
	return nil
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: csi-client --endpoint unix:///path/csi.sock [flags] info|lifecycle|load|mounted|storm\n\n")
	fmt.Fprintf(os.Stderr, "scenarios:\n  info       GetPluginInfo, Probe\n")
	fmt.Fprintf(os.Stderr, "  lifecycle  GetPluginInfo, CreateVolume, ListVolumes, DeleteVolume, ListVolumes\n")
	fmt.Fprintf(os.Stderr, "  load       --concurrency goroutines call --rpc in a loop for --duration; one JSON summary line\n")
	fmt.Fprintf(os.Stderr, "  mounted    --count times: CreateVolume, NodeStageVolume, NodePublishVolume timed, then undone; one JSON line each\n")
	fmt.Fprintf(os.Stderr, "  storm      --count volumes at once, each created, staged and published in a goroutine of its own; a line per volume and one with the time until the last was mounted; then all undone\n\nflags:\n")
	flag.PrintDefaults()
}

func main() {
	params := keyValues{}
	opts := options{}
	flag.StringVar(&opts.endpoint, "endpoint", "", "plugin socket, unix:///path or /path (required)")
	flag.BoolVar(&opts.authorityPath, "authority-path", false,
		"dial a plain path with a custom dialer, as kubelet < 1.26 did (HTTP/2 :authority becomes the socket path)")
	flag.StringVar(&opts.name, "name", fmt.Sprintf("csi-client-%d", time.Now().Unix()), "CreateVolume name (lifecycle), name prefix (mounted, storm)")
	flag.Int64Var(&opts.sizeBytes, "size", 64<<20, "required_bytes for CreateVolume (lifecycle, mounted, storm)")
	flag.StringVar(&opts.fsType, "fs-type", "", "fs_type of the mount capability (lifecycle, mounted, storm); empty lets the plugin choose")
	flag.Var(params, "parameter", "CreateVolume parameter key=value, repeatable (lifecycle, mounted, storm)")
	flag.DurationVar(&opts.callTimeout, "timeout", 2*time.Minute, "deadline of each RPC")
	flag.DurationVar(&opts.dialTimeout, "dial-timeout", 30*time.Second, "how long to wait for the socket to accept")
	flag.StringVar(&opts.rpc, "rpc", "Probe", "RPC the load scenario calls: Probe, GetPluginCapabilities or NodeGetCapabilities")
	flag.IntVar(&opts.concurrency, "concurrency", 32, "goroutines calling at once (load)")
	flag.DurationVar(&opts.duration, "duration", 5*time.Second, "how long calls are counted (load)")
	flag.DurationVar(&opts.warmup, "warmup", time.Second, "load before counting starts (load)")
	flag.IntVar(&opts.count, "count", 1, "samples (mounted), volumes at once (storm); volume names are --name-0, --name-1, ...")
	flag.StringVar(&opts.kubeletDir, "kubelet-dir", "/var/lib/kubelet", "kubelet's directory, under which mounted makes its paths")
	flag.Usage = usage
	flag.Parse()
	opts.parameters = params

	if opts.endpoint == "" || flag.NArg() != 1 {
		usage()
		os.Exit(2)
	}
	scenario := flag.Arg(0)
	run, ok := scenarios[scenario]
	if !ok {
		fmt.Fprintf(os.Stderr, "csi-client: unknown scenario %q (want info, lifecycle, load, mounted or storm)\n", scenario)
		os.Exit(2)
	}

	conn, err := dial(opts)
	if err != nil {
		fail("dial", err)
	}
	defer conn.Close()

	if err := run(conn, opts); err != nil {
		fail(scenario, err)
	}
}
