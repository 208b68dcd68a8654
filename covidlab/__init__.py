"""covidlab: the helper package of the course "Rebuilding COVID-19 chest X-ray classifiers".

One module, one job, on three floors; imports only point down (``tests/test_architecture.py``).

Facts, plain data without TensorFlow:

- ``papers``        each paper's settings, reported tables, class plans, headline result,
                    ambiguities and choices, checklist answers (``papers/<paper>.py``)
- ``architectures`` classifier heads and backbone input sizes

Shared machinery:

- ``config``        where data lives, Colab detection
- ``sources``       parsers for the public sources (Cohen, Kermany, Figure1, Actualmed)
- ``download``      checksummed downloads and safe archive extraction
- ``data``          manifests and patient-aware splits
- ``images``        the image loaders (tf.data and single images), image statistics
- ``synthetic``     synthetic chest X-rays and a synthetic stand-in for the sources
- ``recipes``       each paper's dataset rebuilt from the sources
- ``models``        the backbone registry and the transfer-learning classifier builder
- ``run_config``    the settings of one run
- ``profiles``      smoke / demo / paper run settings, and which sources folder a run reads
- ``train``         training, hold-out and k-fold evaluation, batch-norm recalibration
- ``transfer``      reuse a trained classifier for new classes (replace its output layer)
- ``frozen``        what a frozen base passes on (feature similarity by depth)
- ``leakage``       image-level against patient-level splits
- ``jobs``          long runs as (paper, model, fold) jobs: resumable, shardable (``covidlab run``)
- ``results``       result files of runs made elsewhere (GPU) and recorded demo runs
- ``cost``          what a run costs before you press run
- ``metrics``       confusion-matrix metrics, one-vs-rest reduction, Wilson intervals
- ``viz``           figures
- ``explain``       Grad-CAM class activation maps
- ``benchmark``     all five methods on one common test set
- ``external``      an external test set from collections no recipe trains on
- ``cli``           the ``covidlab-data`` command

Chapter helpers, ``chapters/<chapter>.py``, named like the notebook they serve:
``browse`` (01), ``covidx_net`` (04), ``soares`` (05), ``aboughazala`` (06),
``apostolopoulos`` (07), ``coronet`` (08), ``shortcuts`` (09).
"""

__version__ = "0.1.0"
