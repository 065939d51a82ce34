"""The data layer: raw BP4D / DISFA files to audited, aligned, cached training samples.

=====================  ===============================================================
module                 concept
=====================  ===============================================================
``table``              the frame table, the one in-memory form of a data set
``reading``            pieces shared by the raw readers (folder scans, the join)
``bp4d``               a raw BP4D copy -> frame table; re-exports the per-file modules
``bp4d_layout``        BP4D's sub-folders, file names and path builders
``bp4d_labels``        one BP4D AU occurrence CSV in and out
``bp4d_landmarks``     one BP4D ``2DFeatures`` landmark ``.mat`` in and out
``naming``             zero-padded or unpadded frame names, by each sequence's majority
``disfa``              a raw DISFA copy -> frame table, and its writers
``lists``              JAA-Net / ME-GraphAU list sets <-> frame table
``list_files``         one list file (paths, labels, landmarks, values, weights)
``audit``              every defect of a frame table; the frames fit for training
``splits``             subject-exclusive folds, custom splits, leakage
``stats``              AU occurrence rates, class weights, co-occurrence
``align``              similarity alignment to the square crop
``cache``              the aligned-crop cache on disk
``cache_lock``         one process at a time prepares or builds a cache folder
``dataset``            the torch Dataset over the cache, with the augmentations
``prepare``            read, audit, align and cache: the one step before training
``synthetic``          SynthBP4D, the synthetic data set in the BP4D layout
=====================  ===============================================================

Modules here import only :mod:`aufacs.core` and each other.
"""
