package main

import (
	"fmt"
	"os"
	"path/filepath"
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
		if err := mountedSample(controller, node, opts, fmt.Sprintf("%s-%d", opts.name, i)); err != nil {
			return err
		}
	}
	return nil
}

func mountedSample(controller csi.ControllerClient, node csi.NodeClient, opts options, name string) error {
	capability := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: opts.fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
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
		return callFailed("CreateVolume", start, err)
	}
	createMs := since(start)
	id := created.GetVolume().GetVolumeId()

	// kubelet's paths; kubelet makes the staging directory itself, untimed.
	stagingDir := filepath.Join(opts.kubeletDir, "plugins/kubernetes.io/csi/loam.csi.dev", id)
	staging := filepath.Join(stagingDir, "globalmount")
	podDir := filepath.Join(opts.kubeletDir, "pods", "bench-pod")
	target := filepath.Join(podDir, "volumes/kubernetes.io~csi", id, "mount")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return err
	}

	start = time.Now()
	if _, err := node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: id, StagingTargetPath: staging, VolumeCapability: capability,
	}); err != nil {
		return callFailed("NodeStageVolume", start, err)
	}
	stageMs := since(start)

	start = time.Now()
	if _, err := node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: capability,
	}); err != nil {
		return callFailed("NodePublishVolume", start, err)
	}
	publishMs := since(start)

	start = time.Now()
	if _, err := node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
		return callFailed("NodeUnpublishVolume", start, err)
	}
	start = time.Now()
	if _, err := node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging}); err != nil {
		return callFailed("NodeUnstageVolume", start, err)
	}
	start = time.Now()
	if _, err := controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		return callFailed("DeleteVolume", start, err)
	}
	if err := os.RemoveAll(stagingDir); err != nil {
		return err
	}
	if err := os.RemoveAll(podDir); err != nil {
		return err
	}
	emit(line{Call: "mounted", ElapsedMs: createMs + stageMs + publishMs, Reply: map[string]interface{}{
		"volume_id":  id,
		"create_ms":  createMs,
		"stage_ms":   stageMs,
		"publish_ms": publishMs,
	}})
	return nil
}
