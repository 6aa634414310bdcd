"""mailsift.interfaces"""
