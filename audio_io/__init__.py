"""audio_io: everything that touches audio files: reading into float32, writing atomically.

It knows nothing of the model. (The pair checks, alignment and windowing arrive with the
training command line.)
"""
