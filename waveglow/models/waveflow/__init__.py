"""WaveFlow and NanoFlow (L0SG/NanoFlow): 2-D flows over a (height, width) fold of the audio."""
