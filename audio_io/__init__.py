"""audio_io: everything that touches audio files and pairs of them. It knows nothing of the model.

files     reading any format soundfile reads into float32; atomic writes (lstm_core.files.atomic)
pair      a checked pair (rates, lengths, NaN/Inf, silence, channels, length)
align     the delay between input and target, and its compensation
dataset   one function from the pair options to the training and validation audio and facts
windows   the pair cut into (warm-up + segment) windows, shuffled each epoch
effects   reference effects (low-pass, overdrive, resonant filter, compressor)
demo      generated music-like material (plucked strings and chords) and the demo pair
"""
