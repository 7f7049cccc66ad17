// ReplicaStore
