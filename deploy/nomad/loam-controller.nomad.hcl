# loam's central controller for Nomad (cluster mode on etcd; docs/nomad.md).
#
#   nomad job run -var 'etcd_endpoints=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379' \
#     deploy/nomad/loam-controller.nomad.hcl
#
# `loam controller` serves CSI Identity + Controller from the registry in etcd. Nomad sends
# CreateVolume to one healthy controller of its choosing and never calls GetCapacity, so the
# controller places the volume itself (placement below) and reserves the room in etcd. It needs no
# privileges and no access to any disk: the node agents make the LVM changes.
#
# Checked by test/unit/deploy-nomad.test.ts (structure only: Nomad is not installable where loam is
# developed, so this file has been parsed and checked, never run by Nomad).

variable "etcd_endpoints" {
  type        = string
  description = "etcd client URLs, comma-separated (the same list the node job gets)"
  default     = "http://127.0.0.1:2379"
}

variable "image" {
  type        = string
  description = "the loam container image"
  default     = "ghcr.io/loam-csi/loam:0.1.0"
}

variable "placement" {
  type        = string
  description = "default placement policy: spread or binpack (a volume's loam.csi.dev/placement parameter overrides it)"
  default     = "spread"
}

job "loam-controller" {
  type = "service"

  group "controller" {
    # Every replica serves requests; background work runs on the one holding the etcd election.
    count = 2

    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    task "controller" {
      driver = "docker"

      config {
        image = var.image
        args = [
          "controller",
          # mount_dir below: Nomad bind-mounts a directory of its own there and looks for csi.sock in it.
          "--endpoint=unix:///csi/csi.sock",
          "--etcd-endpoints=${var.etcd_endpoints}",
          # With TLS to etcd, render the files with a template block into secrets/ and add:
          # "--etcd-ca=/secrets/etcd-ca.pem", "--etcd-cert=/secrets/etcd.pem", "--etcd-key=/secrets/etcd-key.pem",
          "--driver-name=loam.csi.dev",
          "--placement=${var.placement}",
          "--node-timeout-seconds=60",
          "--log-level=info",
          "--metrics-address=127.0.0.1:9976",
        ]
      }

      csi_plugin {
        # The same id as the node job's: Nomad pairs the controller and node plugins by id.
        id             = "loam"
        type           = "controller"
        mount_dir      = "/csi"
        health_timeout = "30s"
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
