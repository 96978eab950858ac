//! Tests of the YAML module: Kubernetes YAML 1.1 reading, and writing that reads back the same.
