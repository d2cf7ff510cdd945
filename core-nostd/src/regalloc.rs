//! Linear-scan register allocation over virtual registers, shared by the host back ends.
