package main

import (
	"context"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
)

const unixPrefix = "unix://"

func socketPath(endpoint string) (string, error) {
	path := strings.TrimPrefix(endpoint, unixPrefix)
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("endpoint %q is not an absolute unix socket path", endpoint)
	}
	return path, nil
}

// dial connects the two ways COs have connected to CSI sockets.
//
// Default: target "unix:///path", as csi-lib-utils and kubelet >= 1.26 do.
// grpc-go then sends ":authority: localhost".
//
// --authority-path: target "/path" with a custom unix dialer, as kubelet
// before 1.26 did. grpc-go falls back to the passthrough resolver and uses
// the target itself as ":authority", i.e. the socket path.
func dial(opts options) (*grpc.ClientConn, error) {
	path, err := socketPath(opts.endpoint)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.dialTimeout)
	defer cancel()

	dialOpts := []grpc.DialOption{grpc.WithInsecure(), grpc.WithBlock()}
	target := unixPrefix + path
	if opts.authorityPath {
		target = path
		dialOpts = append(dialOpts, grpc.WithContextDialer(
			func(ctx context.Context, addr string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", addr)
			}))
	}
	conn, err := grpc.DialContext(ctx, target, dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s (target %q): %w", path, target, err)
	}
	return conn, nil
}
