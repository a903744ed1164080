"""The station's panels, one module each; they show state and emit requests, the Station does the work."""
