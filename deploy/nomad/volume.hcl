# A volume for `nomad volume create deploy/nomad/volume.hcl` (Nomad's volume specification).
#
# Nomad sends the CreateVolume to one healthy loam controller; the controller picks a node that
# satisfies topology_request (required, then preferred in order), the device class and the size,
# reserves the room in etcd, and the node's agent makes the LV. Nomad then runs the jobs that claim
# this volume on the node in the volume's topology.
#
# Checked by test/unit/deploy-nomad.test.ts: the plugin id matches the jobs, the parameters pass
# loam's parameter validation, the mount options loam's allow-lists.

id        = "database"
name      = "database"
type      = "csi"
plugin_id = "loam"

# CreateVolume's capacity_range: required_bytes and limit_bytes. loam makes exactly the
# minimum, rounded up to the volume group's extent size, and refuses it if that passes the maximum.
capacity_min = "10GiB"
capacity_max = "20GiB"

# A local LV is reachable from one node: loam accepts only single-node access modes.
capability {
  access_mode     = "single-node-writer"
  attachment_mode = "file-system"
}

capability {
  access_mode     = "single-node-reader-only"
  attachment_mode = "file-system"
}

mount_options {
  fs_type     = "xfs"
  mount_flags = ["noatime"]
}

# Segments use loam's topology key; each node's segment value is its node id (the Nomad node name).
# Leave the block out to let loam choose among all nodes.
topology_request {
  required {
    topology {
      segments = { "topology.loam.csi.dev/node" = "client-1" }
    }
    topology {
      segments = { "topology.loam.csi.dev/node" = "client-2" }
    }
  }
  preferred {
    topology {
      segments = { "topology.loam.csi.dev/node" = "client-2" }
    }
  }
}

# Keys with dots and slashes are quoted, so they are given as an object (`name = { ... }`): Nomad
# reads volume files with HCL 1, which takes this form as it takes a block, and HCL 2 refuses
# quoted names in a block.
parameters = {
  "loam.csi.dev/deviceClass" = "thin"
  "loam.csi.dev/placement"   = "spread"
}
