"""Loss protection: NACK generation, RTX retransmission, FEC and RED."""
