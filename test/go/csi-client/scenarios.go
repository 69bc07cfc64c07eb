package main

import (
	"context"
	"fmt"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

type scenario func(conn *grpc.ClientConn, opts options) error

var scenarios = map[string]scenario{
	"info":      runInfo,
	"lifecycle": runLifecycle,
	"load":      runLoad,
	"mounted":   runMounted,
	"storm":     runStorm,
}

func callContext(opts options) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opts.callTimeout)
}

func runInfo(conn *grpc.ClientConn, opts options) error {
	identity := csi.NewIdentityClient(conn)
	if _, err := getPluginInfo(identity, opts); err != nil {
		return err
	}
	ctx, cancel := callContext(opts)
	defer cancel()
	start := time.Now()
	resp, err := identity.Probe(ctx, &csi.ProbeRequest{})
	if err != nil {
		return callFailed("Probe", start, err)
	}
	// ready is a BoolValue wrapper: null here means the plugin left it unset.
	var ready *bool
	if w := resp.GetReady(); w != nil {
		v := w.GetValue()
		ready = &v
	}
	emit(line{Call: "Probe", ElapsedMs: since(start), Reply: map[string]interface{}{"ready": ready}})
	return nil
}

func getPluginInfo(identity csi.IdentityClient, opts options) (*csi.GetPluginInfoResponse, error) {
	ctx, cancel := callContext(opts)
	defer cancel()
	start := time.Now()
	resp, err := identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		return nil, callFailed("GetPluginInfo", start, err)
	}
	if resp.GetName() == "" {
		return nil, fmt.Errorf("GetPluginInfo returned an empty name")
	}
	emit(line{Call: "GetPluginInfo", ElapsedMs: since(start), Reply: map[string]interface{}{
		"name":           resp.GetName(),
		"vendor_version": resp.GetVendorVersion(),
		"manifest":       nonNil(resp.GetManifest()),
	}})
	return resp, nil
}

func runLifecycle(conn *grpc.ClientConn, opts options) error {
	identity := csi.NewIdentityClient(conn)
	controller := csi.NewControllerClient(conn)
	if _, err := getPluginInfo(identity, opts); err != nil {
		return err
	}
	volumeID, err := createVolume(controller, opts)
	if err != nil {
		return err
	}
	listed, err := listHas(controller, opts, volumeID)
	if err == nil && !listed {
		err = fmt.Errorf("ListVolumes does not list new volume %q", volumeID)
	}
	if err != nil {
		// Still delete, so a failed run does not leave an LV behind.
		if delErr := deleteVolume(controller, opts, volumeID); delErr != nil {
			return fmt.Errorf("%v (cleanup also failed: %v)", err, delErr)
		}
		return err
	}
	if err := deleteVolume(controller, opts, volumeID); err != nil {
		return err
	}
	listed, err = listHas(controller, opts, volumeID)
	if err != nil {
		return err
	}
	if listed {
		return fmt.Errorf("ListVolumes still lists deleted volume %q", volumeID)
	}
	return nil
}

func createVolume(controller csi.ControllerClient, opts options) (string, error) {
	ctx, cancel := callContext(opts)
	defer cancel()
	req := &csi.CreateVolumeRequest{
		Name:          opts.name,
		CapacityRange: &csi.CapacityRange{RequiredBytes: opts.sizeBytes},
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: opts.fsType}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		}},
		Parameters: opts.parameters,
	}
	start := time.Now()
	resp, err := controller.CreateVolume(ctx, req)
	if err != nil {
		return "", callFailed("CreateVolume", start, err)
	}
	vol := resp.GetVolume()
	topology := make([]map[string]string, 0, len(vol.GetAccessibleTopology()))
	for _, t := range vol.GetAccessibleTopology() {
		topology = append(topology, t.GetSegments())
	}
	emit(line{Call: "CreateVolume", ElapsedMs: since(start), Reply: map[string]interface{}{
		"volume_id":           vol.GetVolumeId(),
		"capacity_bytes":      vol.GetCapacityBytes(),
		"volume_context":      nonNil(vol.GetVolumeContext()),
		"accessible_topology": topology,
	}})
	if vol.GetVolumeId() == "" {
		return "", fmt.Errorf("CreateVolume returned an empty volume_id")
	}
	if vol.GetCapacityBytes() != 0 && vol.GetCapacityBytes() < opts.sizeBytes {
		return vol.GetVolumeId(), fmt.Errorf("CreateVolume returned capacity %d < required %d",
			vol.GetCapacityBytes(), opts.sizeBytes)
	}
	return vol.GetVolumeId(), nil
}

// listHas pages through ListVolumes and reports whether volumeID is listed.
func listHas(controller csi.ControllerClient, opts options, volumeID string) (bool, error) {
	ctx, cancel := callContext(opts)
	defer cancel()
	start := time.Now()
	type entry struct {
		VolumeID         string   `json:"volume_id"`
		CapacityBytes    int64    `json:"capacity_bytes"`
		PublishedNodeIDs []string `json:"published_node_ids,omitempty"`
	}
	entries := []entry{}
	found := false
	token := ""
	pages := 0
	for {
		resp, err := controller.ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: token})
		if err != nil {
			return false, callFailed("ListVolumes", start, err)
		}
		pages++
		for _, e := range resp.GetEntries() {
			id := e.GetVolume().GetVolumeId()
			found = found || id == volumeID
			entries = append(entries, entry{
				VolumeID:         id,
				CapacityBytes:    e.GetVolume().GetCapacityBytes(),
				PublishedNodeIDs: e.GetStatus().GetPublishedNodeIds(),
			})
		}
		token = resp.GetNextToken()
		if token == "" {
			break
		}
		if pages > 10000 {
			return false, fmt.Errorf("ListVolumes: next_token never ended after %d pages", pages)
		}
	}
	emit(line{Call: "ListVolumes", ElapsedMs: since(start), Reply: map[string]interface{}{
		"entries": entries,
		"pages":   pages,
		"checked": volumeID,
		"found":   found,
	}})
	return found, nil
}

func deleteVolume(controller csi.ControllerClient, opts options, volumeID string) error {
	ctx, cancel := callContext(opts)
	defer cancel()
	start := time.Now()
	if _, err := controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: volumeID}); err != nil {
		return callFailed("DeleteVolume", start, err)
	}
	emit(line{Call: "DeleteVolume", ElapsedMs: since(start), Reply: map[string]interface{}{"volume_id": volumeID}})
	return nil
}

// nonNil keeps empty maps as {} in the JSON, so readers need not handle null.
func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
