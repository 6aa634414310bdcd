"""mailsift.pipeline"""
