"""Learner parts used only by the learned oracles: networks, population encoders, exploration noise, replay,
the action map, named generators, the training budget and the scales fixed from data."""
