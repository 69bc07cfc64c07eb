package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// runMounted times what kubelet and external-provisioner ask of a plugin before a
// pod can use a new volume: CreateVolume, NodeStageVolume, NodePublishVolume, as
// their Go clients send them. Each of --count samples prints one JSON line with the
// three calls' times; the volume is then unpublished, unstaged and deleted, untimed.
func runMounted(conn *grpc.ClientConn, opts options) error {
	controller := csi.NewControllerClient(conn)
	node := csi.NewNodeClient(conn)
	for i := 0; i < opts.count; i++ {
		v, err := bringUp(controller, node, opts, fmt.Sprintf("%s-%d", opts.name, i))
		if err != nil {
			return err
		}
		if err := takeDown(controller, node, opts, v); err != nil {
			return err
		}
		emit(v.report("mounted"))
	}
	return nil
}

// runStorm is --count pods starting on one node at once (a StatefulSet scaled up, a
// node replaced): every volume's CreateVolume, NodeStageVolume and NodePublishVolume
// run in a goroutine of its own, all released together. One JSON line per volume,
// then a "storm" line whose elapsed_ms is the time until the last was mounted; the
// volumes are then taken down, all at once, untimed.
func runStorm(conn *grpc.ClientConn, opts options) error {
	controller := csi.NewControllerClient(conn)
	node := csi.NewNodeClient(conn)
	volumes := make([]*mountedVolume, opts.count)
	errs := make([]error, opts.count)
	done := make([]float64, opts.count)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < opts.count; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-release
			volumes[i], errs[i] = bringUp(controller, node, opts, fmt.Sprintf("%s-%d", opts.name, i))
			done[i] = time.Now().Sub(stormStart).Seconds() * 1000
		}(i)
	}
	stormStart = time.Now()
	close(release)
	wg.Wait()
	last := 0.0
	var first error
	for i, v := range volumes {
		if errs[i] != nil {
			if first == nil {
				first = errs[i]
			}
			continue
		}
		if done[i] > last {
			last = done[i]
		}
		l := v.report("storm-volume")
		l.Reply.(map[string]interface{})["mounted_at_ms"] = done[i]
		emit(l)
	}
	// Taken down whatever the outcome, so a failed storm leaves nothing behind.
	for i, v := range volumes {
		if v == nil {
			continue
		}
		wg.Add(1)
		go func(i int, v *mountedVolume) {
			defer wg.Done()
			if err := takeDown(controller, node, opts, v); err != nil && errs[i] == nil {
				errs[i] = err
			}
		}(i, v)
	}
	wg.Wait()
	if first != nil {
		return first
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	emit(line{Call: "storm", ElapsedMs: last, Reply: map[string]interface{}{"volumes": opts.count}})
	return nil
}

var stormStart time.Time

// mountedVolume is one volume a pod could use: made, staged and published.
type mountedVolume struct {
	id, stagingDir, staging, podDir, target string
	createMs, stageMs, publishMs            float64
}

func (v *mountedVolume) report(call string) line {
	return line{Call: call, ElapsedMs: v.createMs + v.stageMs + v.publishMs, Reply: map[string]interface{}{
		"volume_id":  v.id,
		"create_ms":  v.createMs,
		"stage_ms":   v.stageMs,
		"publish_ms": v.publishMs,
	}}
}

func bringUp(controller csi.ControllerClient, node csi.NodeClient, opts options, name string) (*mountedVolume, error) {
	capability := mountCapability(opts)
	// external-provisioner's --extra-create-metadata adds the claim's names.
	parameters := map[string]string{
		"csi.storage.k8s.io/pvc/name":      "pvc-" + name,
		"csi.storage.k8s.io/pvc/namespace": "bench",
		"csi.storage.k8s.io/pv/name":       "pv-" + name,
	}
	for k, v := range opts.parameters {
		parameters[k] = v
	}

	ctx, cancel := callContext(opts)
	defer cancel()
	start := time.Now()
	created, err := controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: opts.sizeBytes},
		VolumeCapabilities: []*csi.VolumeCapability{capability},
		Parameters:         parameters,
	})
	if err != nil {
		return nil, callFailed("CreateVolume", start, err)
	}
	v := &mountedVolume{createMs: since(start), id: created.GetVolume().GetVolumeId()}

	// kubelet's paths; kubelet makes the staging directory itself, untimed.
	v.stagingDir = filepath.Join(opts.kubeletDir, "plugins/kubernetes.io/csi/loam.csi.dev", v.id)
	v.staging = filepath.Join(v.stagingDir, "globalmount")
	v.podDir = filepath.Join(opts.kubeletDir, "pods", "bench-pod-"+name)
	v.target = filepath.Join(v.podDir, "volumes/kubernetes.io~csi", v.id, "mount")
	if err := os.MkdirAll(v.staging, 0o750); err != nil {
		return v, err
	}

	start = time.Now()
	if _, err := node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: v.id, StagingTargetPath: v.staging, VolumeCapability: capability,
	}); err != nil {
		return v, callFailed("NodeStageVolume", start, err)
	}
	v.stageMs = since(start)

	start = time.Now()
	if _, err := node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: v.id, StagingTargetPath: v.staging, TargetPath: v.target, VolumeCapability: capability,
	}); err != nil {
		return v, callFailed("NodePublishVolume", start, err)
	}
	v.publishMs = since(start)
	return v, nil
}

func takeDown(controller csi.ControllerClient, node csi.NodeClient, opts options, v *mountedVolume) error {
	ctx, cancel := callContext(opts)
	defer cancel()
	start := time.Now()
	if _, err := node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.id, TargetPath: v.target}); err != nil {
		return callFailed("NodeUnpublishVolume", start, err)
	}
	start = time.Now()
	if _, err := node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.id, StagingTargetPath: v.staging}); err != nil {
		return callFailed("NodeUnstageVolume", start, err)
	}
	start = time.Now()
	if _, err := controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.id}); err != nil {
		return callFailed("DeleteVolume", start, err)
	}
	if err := os.RemoveAll(v.stagingDir); err != nil {
		return err
	}
	return os.RemoveAll(v.podDir)
}

func mountCapability(opts options) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: opts.fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}
