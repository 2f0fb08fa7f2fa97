"""Helpers shared by every test tier (and some ``bench/`` scripts), one of each:

- :mod:`tests.support.server`: ``free_port`` and ``start_server`` (``cxrlab serve`` or ``cxrlab demo`` in a process);
- :mod:`tests.support.dicom`: the DICOM writer (``make_dicom``, ``dicom_dataset``, ``make_hostile_dicoms``);
- :mod:`tests.support.users`: the test users and their password;
- :mod:`tests.support.data`: the real test data (``$CXRLAB_TEST_DATA``) and ``real_data``;
- :mod:`tests.support.pg`: the throwaway PostgreSQL cluster (a pytest plugin of the whole suite);
- :mod:`tests.support.orthanc`: real DICOM peers (Orthanc with DICOMweb, dcmtk's ``dcmqrscp``) on free ports, and
  phantoms placed in chosen studies and series;
- reference implementations and generators: ``coco_reference``, ``validate_reference``, ``leaderboard_data``,
  ``phi_strategies``.
"""
