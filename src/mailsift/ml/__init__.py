"""mailsift.ml"""
