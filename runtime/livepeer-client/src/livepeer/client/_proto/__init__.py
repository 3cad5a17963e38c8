"""Generated protobuf messages for go-livepeer's ``net`` package (see lp_rpc.proto; regenerate with scripts/gen_proto.py)."""
