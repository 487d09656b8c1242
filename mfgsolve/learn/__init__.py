"""Learner parts used only by the learned oracles: networks, population encoders, exploration noise, replay."""
