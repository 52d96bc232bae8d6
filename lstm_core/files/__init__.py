"""The files a model lives in, and the one way every file of this project is written.

    atomic        write to a temporary beside the file, then rename: never half a file
    model_file    ModelFile (a model as read from any format) and ModelFileError
    npz           our model.npz and checkpoint.npz: named arrays plus one JSON string
    history       history.csv, one row per epoch
    torch_layout  our gate order (o, i, f, g) to PyTorch's (i, f, g, o) and back
    nam           Neural Amp Modeler .nam files (LSTM): read and write
    aidax         AIDA-X / RTNeural .json files: read and write, check vectors
    formats       any model file in (by extension), the plugin formats out

A leaf of lstm_core: it reads and writes what the numerics compute, and nothing
numerical imports it.
"""
