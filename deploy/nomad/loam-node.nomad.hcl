# loam's node agent on every Nomad client (cluster mode on etcd; docs/nomad.md).
#
#   nomad job run -var 'etcd_endpoints=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379' \
#     deploy/nomad/loam-node.nomad.hcl
#
# `loam node --cluster-etcd-endpoints ...` registers this node in etcd under a lease, makes the LVM
# changes the controller asks of it, and serves CSI Identity + Node locally (no Controller service:
# loam-controller.nomad.hcl does that). The Docker driver's client configuration must allow
# privileged containers (plugin "docker" { config { allow_privileged = true  volumes { enabled = true } } }).
#
# What Nomad adds to this task by itself, because of the csi_plugin block (so it is not repeated
# here; Docker refuses two mounts at one path):
#   - its socket directory <data_dir>/client/csi/plugins/<alloc id> at mount_dir (/csi), bidirectional;
#   - <data_dir>/client/csi/node/loam at stage_publish_base_dir (/local/csi), bidirectional: the staging
#     and per-alloc target paths Nomad sends lie under it, and the mounts loam makes there reach the
#     host and, from there, the tasks that use the volume;
#   - the host's /dev (LVs appear there after the container started).
#
# Checked by test/unit/deploy-nomad.test.ts (structure only: Nomad is not installable where loam is
# developed, so this file has been parsed and checked, never run by Nomad).

variable "etcd_endpoints" {
  type        = string
  description = "etcd client URLs, comma-separated (the same list the controller job gets)"
  default     = "http://127.0.0.1:2379"
}

variable "image" {
  type        = string
  description = "the loam container image"
  default     = "ghcr.io/loam-csi/loam:0.1.0"
}

job "loam-node" {
  # One agent on every client; system jobs are also drained last, after the tasks using volumes.
  type = "system"

  group "node" {
    task "node" {
      driver = "docker"

      config {
        image = var.image
        args = [
          "node",
          "--config=/local/config.json",
          # The node's id is its topology segment: { "topology.loam.csi.dev/node": "<this name>" }.
          "--node-id=${node.unique.name}",
          "--cluster-etcd-endpoints=${var.etcd_endpoints}",
          # With TLS to etcd: "--etcd-ca=/secrets/etcd-ca.pem", "--etcd-cert=/secrets/etcd.pem",
          # "--etcd-key=/secrets/etcd-key.pem" (rendered by a template block into secrets/).
          # Garbage collection reports orphan LVs and dangling records (docs/cluster.md); add
          # "--gc=delete" to remove orphan LVs after "--gc-grace-seconds" (default 600).
        ]

        # mount, mkfs and blkid act on the host's devices and on mounts shared with the host.
        privileged = true
        # LVM runs in the host's namespaces (the lvmCommandPrefix below enters those of PID 1), as in
        # the Kubernetes DaemonSet: the host's lvm.conf, locks, udev and device cache, one LVM per host.
        pid_mode = "host"

        # The host's LVM run and lock directories and /etc/lvm: an LVM command started inside the
        # container (an operator's `nomad alloc exec ... lvs`, `loam status`) takes the host's locks and
        # sees the host's metadata backups, never a private copy beside a second writer.
        mount {
          type   = "bind"
          source = "/run/lvm"
          target = "/run/lvm"
        }
        mount {
          type   = "bind"
          source = "/run/lock/lvm"
          target = "/run/lock/lvm"
        }
        mount {
          type   = "bind"
          source = "/etc/lvm"
          target = "/etc/lvm"
        }
        # Device attributes for blkid, mkfs and the filesystem growers.
        mount {
          type   = "bind"
          source = "/sys"
          target = "/sys"
        }
      }

      # V8's young generation kept small, as in the DaemonSet (src/deploy/node-runtime.ts, docs/benchmarks.md).
      env {
        NODE_OPTIONS = "--max-semi-space-size=1"
      }

      csi_plugin {
        id                     = "loam"
        type                   = "node"
        mount_dir              = "/csi"
        stage_publish_base_dir = "/local/csi"
        health_timeout         = "30s"
      }

      # loam node's configuration (docs/schema/config.schema.json). kubeletDir is the directory every
      # staging and target path must lie under: here Nomad's stage_publish_base_dir.
      template {
        destination = "local/config.json"
        change_mode = "restart"
        data        = <<-EOT
          {
            "endpoint": "unix:///csi/csi.sock",
            "driverName": "loam.csi.dev",
            "topologyKey": "topology.loam.csi.dev/node",
            "kubeletDir": "/local/csi",
            "logLevel": "info",
            "lvmCommandPrefix": ["nsenter", "--target=1", "--mount", "--uts", "--ipc", "--net", "--pid", "--"],
            "metricsAddress": "127.0.0.1:9975",
            "deviceClasses": [
              { "name": "thick", "volumeGroup": "loam", "type": "thick", "default": true },
              { "name": "thin", "volumeGroup": "loam", "type": "thin", "thinPool": "loam-thin", "overprovisionRatio": 4 }
            ]
          }
        EOT
      }

      resources {
        cpu    = 200
        memory = 512
      }
    }
  }
}
