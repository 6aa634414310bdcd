"""mailsift.detectors"""
